// The QEMU lane: a source and a destination QEMU, each carrying vfio-pci
// devices backed by vfio_mig_emu instances, live-migrated over a unix
// socket with QMP, as a user would run them. Used by the suite's Qemu*
// tests and by vfio-migctl qemu-downtime.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <vfiomig/control.hpp>
#include <vfiomig/mdev.hpp>
#include <vfiomig/qemu.hpp>

namespace vfiomig::qemu {

/// The QEMU builds the lane runs (VFIOMIG_QEMU_10/11 or QEMU), probed once.
const Builds &lane_builds();
/// Why there is no QEMU to run, for skip messages.
std::string lane_missing_reason();
/// The build with this label ("10.0", "11.1", "QEMU"), or nullptr.
const Build *lane_build(const std::string &label);

/// One device pair: a source instance in the source VM, a destination
/// instance in the destination VM, of the same profile.
struct LanePair {
	MdevInstance src, dst;
};

/// Options of a migration pair.
struct LaneOptions {
	std::vector<Profile> profiles = {Profile::Full};
	/// QEMU trace patterns (both VMs).
	std::vector<std::string> trace = {"vfio_migration_set_state", "vfio_query_precopy_size",
					  "vfio_migration_init", "loadvm_approve_switchover*",
					  "vfio_query_precopy_size_request_switchover_ack",
					  "qemu_savevm_query_pending"};
	/// Where logs and traces go: DIR/NAME ($VM_RESULTS/qemu by default).
	std::string results_root;
	/// Knobs applied to every source instance before QEMU opens it.
	control::Knobs src_knobs;
	/// Knobs applied to every destination instance.
	control::Knobs dst_knobs;
	/// Machine type: "q35" (the build's newest), or a versioned one to
	/// get its compat properties ("pc-q35-11.0": 11.1's legacy
	/// switchover-ack).
	std::string machine = "q35";
	/// Capabilities set on both sides.
	std::vector<std::string> capabilities = {"return-path", "switchover-ack"};
};

/// A source VM and an incoming destination VM with their devices. Logs
/// and traces stay in dir; sockets go to a private /tmp directory.
class QemuLane {
public:
	/// Creates the instances (knobs set through ctl), starts both QEMUs
	/// and sets the capabilities; throws naming what failed.
	QemuLane(control::Client &ctl, const Build &build, const std::string &name, const LaneOptions &opt);
	~QemuLane();
	QemuLane(const QemuLane &) = delete;
	QemuLane &operator=(const QemuLane &) = delete;

	Vm &src() { return *src_vm_; }
	Vm &dst() { return *dst_vm_; }
	std::vector<LanePair> &pairs() { return pairs_; }
	const std::string &dir() const { return dir_; }

	/// Replaces the destination QEMU with a new incoming one on the same
	/// destination instances (a retry after a failed migration); its log
	/// is dst-N.log.
	void restart_destination();

	/// migrate-set-parameters on the source.
	void set_parameters(const qmp::json &params);
	/// migrate-incoming on the destination, then migrate on the source.
	void start_migration();
	/// query-migrate on the source until a final status (completed,
	/// failed, cancelled) or timeout; returns its last answer. With
	/// converge, a migration still active after `patience` whose
	/// expected-downtime exceeds the downtime-limit gets the limit raised
	/// to twice the expected downtime, once (what a management layer
	/// does, and the pending-size series' own test): raised_limit_ms()
	/// tells whether and to what.  Where QEMU's estimate leaves the
	/// devices out (10.0), the devices' memory at QEMU's measured
	/// throughput stands in for it.
	qmp::json wait_final(std::chrono::milliseconds timeout, bool converge = false,
			     std::chrono::milliseconds patience = std::chrono::seconds(8));
	std::optional<std::int64_t> raised_limit_ms() const { return raised_limit_ms_; }
	/// Source trace lines of an event; destination likewise.
	std::vector<TraceLine> src_trace(std::string_view event) const;
	std::vector<TraceLine> dst_trace(std::string_view event) const;
	/// Polls until pred() holds or timeout; false on timeout.
	template <typename Pred>
	static bool wait_for(Pred pred, std::chrono::milliseconds timeout)
	{
		auto deadline = std::chrono::steady_clock::now() + timeout;
		while (!pred()) {
			if (std::chrono::steady_clock::now() >= deadline)
				return false;
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
		}
		return true;
	}
	/// "vme0 profile full src 6f1c.. dst 8a2e.." lines, for messages.
	std::string describe() const;

private:
	std::string dir_;
	std::string socket_dir_;
	std::vector<LanePair> pairs_;
	std::optional<Vm> src_vm_, dst_vm_;
	std::optional<std::int64_t> raised_limit_ms_;
	std::uint64_t device_bytes_ = 0; ///< memory of the source devices
	VmConfig dst_config_;
	qmp::json caps_;
	unsigned restarts_ = 0;
};

} // namespace vfiomig::qemu
