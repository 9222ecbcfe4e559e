// vfio-migctl bench: per-arc transition latency, parallel switchover
// speedup, data path throughput (read()/io_uring/write() against an
// in-guest memcpy), the module's kernel memory per device, and how long
// CTRL_CMD_GETFAMILY and another device's I/O are held up while an
// unprivileged process loops DEV_GET on large devices.
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
	unsigned control_devices_ = 2;
	unsigned control_mib_ = 1024;
	double control_seconds_ = 5;
	double control_bound_ms_ = 100;
};

} // namespace migctl
