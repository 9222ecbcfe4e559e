// vfio-migctl subcommands that go through the control plane (netlink):
// list, show, stats, create, remove, state, knob, fault, workload, counters,
// quirk, watch.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace migctl {

class ControlCommands {
public:
	/// Registers the subcommands on `app`.
	explicit ControlCommands(CLI::App &app);
	~ControlCommands();
	/// After parsing: runs the selected subcommand if it is one of ours;
	/// returns false when none of ours was selected.
	bool run(int *rc);
	struct Options;

private:
	std::unique_ptr<Options> o_;
	std::vector<std::pair<CLI::App *, std::function<int()>>> commands_;
};

} // namespace migctl
