// vfio-migctl bench: per-arc transition latency, parallel switchover
// speedup, data path throughput (read()/io_uring/write() against an
// in-guest memcpy) and the module's kernel memory per device.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace migctl {

class Bench {
public:
	/// Registers the subcommand on `app`.
	explicit Bench(CLI::App &app);
	/// After parsing: runs it when selected; false when not selected.
	bool run(int *rc);

private:
	CLI::App *cmd_ = nullptr;
	bool json_ = false;
	std::vector<std::string> only_;
	unsigned iterations_ = 30;
	unsigned reps_ = 3;
	unsigned delay_ms_ = 10;
	unsigned data_mib_ = 64;
	std::vector<unsigned> mem_mib_ = {16, 64, 256, 1024};
	unsigned write_cap_mib_ = 256;
};

} // namespace migctl
