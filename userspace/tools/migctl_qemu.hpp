// vfio-migctl qemu-downtime: the seeds' downtime experiment measured by
// QEMU itself: one VM with one busy device (reconfiguring during precopy)
// and idle ones, migrated by QEMU 11.1 with PRECOPY_INFOv2 (REINIT and the
// re-usable switchover-ack) and with the opt-in refused by the devices
// (knob REFUSE_PRECOPY_V2: QEMU's legacy path); QEMU's own downtime and
// total-time, medians over the fixture's runs.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

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

/// vfio-migctl qemu-expected-downtime: the pending-size series' own test
/// with a vfio_mig_emu device in place of its vGPU. A device without
/// PRE_COPY holds SIZE of state and the migration is capped at a
/// bandwidth: QEMU 11.1 counts the device's stop-copy size in
/// expected-downtime and does not converge at the default limit; the limit
/// is then set to the expected downtime and the actual one is measured.
/// QEMU 10.0 leaves device state out. A last case arms GARBAGE_SIZE on
/// MIG_DATA_SIZE: what each QEMU does with a device lying about its size.
class QemuExpectedDowntime {
public:
	explicit QemuExpectedDowntime(CLI::App &app);
	bool run(int *rc);

private:
	CLI::App *cmd_ = nullptr;
	std::vector<std::string> sizes_ = {"64M", "256M"};
	std::vector<std::string> bandwidths_ = {"32M", "128M"};
	std::string json_out_;
	std::string results_;
};

/// vfio-migctl qemu-stop-window: the downtime the emulator itself adds,
/// by device memory size. A `full` device of each SIZE, its memory dirtied
/// after QEMU opened it, migrated by QEMU (the newest build found) with
/// no bandwidth cap and no cost-model knobs: all state moves in precopy,
/// so whatever grows with SIZE in the stop window is the emulator's.
/// Prints QEMU's downtime and STOP->RESUME per size and their growth from
/// the smallest to the largest size against --bound-ms, met or not met.
class QemuStopWindow {
public:
	explicit QemuStopWindow(CLI::App &app);
	bool run(int *rc);

private:
	CLI::App *cmd_ = nullptr;
	std::vector<std::string> sizes_ = {"16M", "256M", "1G"};
	int runs_ = 3;
	double bound_ms_ = 100;
	std::string json_out_;
	std::string results_;
};

} // namespace migctl
