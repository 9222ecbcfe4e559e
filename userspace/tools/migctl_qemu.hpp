// vfio-migctl qemu-downtime: the seeds' downtime experiment measured by
// QEMU itself: one VM with one busy device (reconfiguring during precopy)
// and idle ones, migrated by QEMU 11.1 with PRECOPY_INFOv2 (REINIT and the
// re-usable switchover-ack) and with the opt-in refused by the devices
// (knob REFUSE_PRECOPY_V2: QEMU's legacy path); QEMU's own downtime and
// total-time, medians over the fixture's runs.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace migctl {

class QemuDowntime {
public:
	explicit QemuDowntime(CLI::App &app);
	bool run(int *rc);

private:
	CLI::App *cmd_ = nullptr;
	std::string fixture_ = "fixtures/reinit-downtime.json";
	int runs_ = 0;
	std::string json_out_;
	std::string results_;
};

} // namespace migctl
