// vfio-migctl reinit-table: the seeds' downtime experiment (one busy device
// reconfiguring during precopy plus idle ones), migrated with protocol v1
// and with v2 (REINIT + per-device switchover-ack) by vfiomig::Migrator,
// from a fixture file (fixtures/reinit-downtime.json).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace migctl {

class ReinitTable {
public:
	/// Registers the subcommand on `app`.
	explicit ReinitTable(CLI::App &app);
	/// After parsing: runs it when selected; false when not selected.
	bool run(int *rc);

private:
	CLI::App *cmd_ = nullptr;
	std::string fixture_ = "fixtures/reinit-downtime.json";
	int runs_ = 0;
	std::string json_out_;
};

} // namespace migctl
