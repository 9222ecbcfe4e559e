// The reference "VMM" migration loop, modelled on QEMU's hw/vfio/migration.c:
// N source devices to N destination devices through their data fds, the
// way QEMU's 2026 VFIO migration series drives real devices — precopy
// iterations driven by VFIO_MIG_GET_PRECOPY_INFO, switchover-ack (legacy or
// per device and re-usable), a final precopy query once the vCPUs are
// stopped, parallel (or sequential) state changes at switchover, and
// downtime accounting against the estimate from MIG_DATA_SIZE.
//
// SwitchoverGate is the pure part (no I/O): it is fed precopy
// observations and destination progress and says when switchover is
// allowed, which ACKs were sent, and when the migration must fail.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vfiomig/vfio.hpp"

namespace vfiomig {

/// Switchover-ack flavour.
enum class AckMode {
	/// One ACK for all devices, given once: when the destination has
	/// loaded the initial data of every device.
	Legacy,
	/// One ACK per device, re-usable: a REINIT seen after a device's
	/// ACK requests a new one; switchover waits for every pending ACK.
	PerDevice,
};
/// "legacy", "per-device".
std::string ack_mode_name(AckMode m);

/// One VFIO_MIG_GET_PRECOPY_INFO answer as the consumer saw it.
struct PrecopyObservation {
	std::uint32_t flags = 0;
	std::uint64_t initial_bytes = 0;
	std::uint64_t dirty_bytes = 0;
	/// The session is PRECOPY_INFOv2 (flags is an output). Without it
	/// flags is reserved and ignored, whatever it holds.
	bool v2 = false;
};

/// Sizes above this are garbage from the driver (hints, never trusted).
inline constexpr std::uint64_t kMaxPlausibleSize = 1ull << 40;

/// Pure switchover-ack and readiness state machine. The device's initial
/// data is the first `initial_bytes` of the stream after a query; the
/// destination acknowledges a device once those bytes were written (and
/// so loaded) on the destination, or once the source ran dry (ENOMSG): the
/// stream is the truth, reported sizes are hints. Without REINIT,
/// initial_bytes only decreases, so a larger report is ignored (counted as
/// a driver bug in initial_growth()).
class SwitchoverGate {
public:
	/// legacy_waits_for_reinit: in legacy mode, new initial data that a
	/// REINIT announces after the single ACK must be loaded before
	/// switchover. QEMU 11.1 does not wait for it (false, the default);
	/// true keeps this library's earlier, stricter behaviour.
	SwitchoverGate(std::size_t devices, AckMode mode, bool legacy_waits_for_reinit = false);

	/// How the failure reads when ACKs are requested after the decision.
	enum class LateAckMessage {
		/// QEMU 11.1's wording, which counts the devices ("Switchover
		/// ACK was requested by N devices during switchover"), followed
		/// by the devices' names.
		QemuCount,
		/// This library's earlier message, naming the first device only.
		FirstDevice,
	};
	void set_late_ack_message(LateAckMessage m) { late_message_ = m; }

	/// A precopy query of device `dev` answered `o`.
	void observe(std::size_t dev, const PrecopyObservation &o);
	/// `bytes` more of device `dev`'s stream were written to (loaded by)
	/// the destination.
	void loaded(std::size_t dev, std::uint64_t bytes);
	/// Device `dev`'s source returned ENOMSG: everything so far was read
	/// and loaded.
	void drained(std::size_t dev);
	/// The device takes no part in precopy (no PRE_COPY): nothing to ACK.
	void exempt(std::size_t dev);
	/// The switchover decision was taken: from now on an ACK request
	/// (REINIT in per-device mode) fails the migration.
	void decide();

	bool decided() const { return decided_; }
	/// Every device seen, its initial data loaded, every ACK in, no failure.
	bool ready() const;
	/// Why ready() is false ("" when it is true).
	std::string why_not_ready() const;
	/// Set once the migration must fail.
	const std::optional<std::string> &failure() const { return failure_; }

	AckMode mode() const { return mode_; }
	std::size_t size() const { return devs_.size(); }
	/// Initial bytes still to load for `dev` (UINT64_MAX before the first query).
	std::uint64_t initial_left(std::size_t dev) const { return devs_.at(dev).initial_left; }
	/// Per device: the device's ACK is in. Legacy: the single ACK is in.
	bool acked(std::size_t dev) const;
	/// ACK messages the destination sent (legacy: at most 1).
	std::uint32_t acks_sent() const { return acks_sent_; }
	/// Times `dev` needed an ACK (1 + REINITs after an ACK, per device).
	std::uint32_t ack_requests(std::size_t dev) const { return devs_.at(dev).ack_requests; }
	std::uint32_t acks(std::size_t dev) const { return devs_.at(dev).acks; }
	std::uint32_t reinits(std::size_t dev) const { return devs_.at(dev).reinits; }
	std::uint32_t initial_growth(std::size_t dev) const { return devs_.at(dev).growth; }
	/// `dev` requested an ACK after the switchover decision.
	bool late_ack_request(std::size_t dev) const { return devs_.at(dev).late; }
	/// Devices that requested an ACK after the decision, in the order seen.
	std::size_t late_ack_requests() const { return late_.size(); }
	/// Label used in messages ("device 2" by default).
	void set_label(std::size_t dev, std::string label) { devs_.at(dev).label = std::move(label); }

private:
	struct Dev {
		std::string label;
		bool seen = false;
		bool exempt = false;
		bool acked = false;
		std::uint64_t initial_left = UINT64_MAX;
		std::uint32_t ack_requests = 1;
		std::uint32_t acks = 0;
		std::uint32_t reinits = 0;
		std::uint32_t growth = 0;
		bool late = false;
	};
	void maybe_ack(std::size_t dev);
	void fail_late_request(std::size_t dev);
	bool loaded_initial(const Dev &d) const { return d.exempt || (d.seen && d.initial_left == 0); }

	AckMode mode_;
	std::vector<Dev> devs_;
	bool legacy_acked_ = false;
	bool legacy_waits_for_reinit_ = false;
	bool decided_ = false;
	std::uint32_t acks_sent_ = 0;
	LateAckMessage late_message_ = LateAckMessage::QemuCount;
	std::vector<std::size_t> late_;
	std::optional<std::string> failure_;
};

/// A reported stop-copy size, clamped: std::nullopt when implausible.
std::optional<std::uint64_t> plausible_size(std::uint64_t reported);
/// Expected time to move `bytes` at `bytes_per_s` (infinity when unknown).
double expected_ms(std::uint64_t bytes, double bytes_per_s);

struct MigratorOptions {
	AckMode ack = AckMode::PerDevice;
	/// Opt the devices in to PRECOPY_INFOv2 (REINIT); devices refusing
	/// it (ENOTTY) stay v1. As QEMU 11.1 (vfio_migration_init() at device
	/// realize, on the source and on the destination alike: trace
	/// "precopy_info_v2_used 1" in both, QemuOptIn), the
	/// opt-in is done once, when the Migrator is constructed, for every
	/// device with PRE_COPY on both sides.
	bool precopy_v2 = true;
	/// The earlier behaviour: opt in at the start of every run(), on the
	/// sources only.
	bool precopy_v2_per_run_source_only = false;
	/// Switchover state changes: one thread per device (std::jthread +
	/// std::barrier) or one device after the other.
	bool parallel = true;
	/// Switchover once the expected downtime is at most this.
	std::chrono::microseconds downtime_limit = std::chrono::milliseconds(300);
	/// Switchover is not considered before this iteration (stands in for
	/// the rest of the VM — RAM — still converging).
	unsigned min_iterations = 1;
	/// Fail ("did not converge") after this many iterations.
	unsigned max_iterations = 2000;
	/// Pause between iterations (the guest runs meanwhile).
	std::chrono::microseconds iteration_interval{0};
	/// Most bytes read from one device per iteration.
	std::uint64_t iteration_budget = 16u << 20;
	/// Query sources once more after the vCPUs stopped, to catch a REINIT
	/// in the gap after the switchover decision. As QEMU 11.1 (its "Final
	/// precopy reinit check" in hw/vfio/migration.c runs in
	/// vfio_vmstate_change_prepare(), the VM-stop prepare handler that
	/// vfio_migration_init() registers only for devices with P2P; the
	/// QEMU lane, QemuFinalQuery, sees its query after runstate_set
	/// finish-migrate and before PRE_COPY_P2P, and none in legacy ack
	/// mode): only in per-device ack mode, only for devices with P2P, and
	/// before PRE_COPY -> PRE_COPY_P2P. false: no final query at all.
	bool final_query = true;
	/// The earlier behaviour: the final query for every device with
	/// PRE_COPY, in either ack mode.
	bool final_query_every_device = false;
	/// The earlier behaviour: the final query after PRE_COPY ->
	/// PRE_COPY_P2P (in PRE_COPY_P2P) rather than before it.
	bool final_query_after_p2p = false;
	/// The earlier failure message for ACKs requested after the decision:
	/// the first device's name, rather than QEMU 11.1's count
	/// (SwitchoverGate::LateAckMessage).
	bool late_ack_names_first_device = false;
	/// Legacy ack with the v2 opt-in: after the single ACK, wait for the
	/// new initial data a REINIT announces before switching over. Off by
	/// default, as QEMU 11.1 (checked by the QEMU lane, QemuReinit
	/// ..._legacy_ack); on: the stricter behaviour of earlier versions.
	bool legacy_ack_waits_for_reinit = false;
	/// Guest activity before precopy iteration N (tests, benchmarks).
	std::function<void(unsigned)> before_iteration;
	/// Runs after the switchover decision, before the vCPUs stop (the gap
	/// the final query exists for).
	std::function<void()> after_decision;
	/// A device's state digest, for the source/destination comparison.
	std::function<std::optional<std::uint32_t>(Device &)> digest;
};

/// Whether a source device gets the final precopy query after the vCPUs
/// stopped (pure; MigratorOptions::final_query and its named options).
bool final_query_applies(const MigratorOptions &opt, bool precopy, bool p2p);
/// The switchover phases in the order they run ("final-query",
/// "quiesce", "stop-copy", "run"); pure.
std::vector<std::string> switchover_phases(const MigratorOptions &opt);

struct DeviceReport {
	std::string label;
	bool precopy = false; ///< took part in PRE_COPY
	bool v2 = false;      ///< PRECOPY_INFOv2 opted in (source)
	bool dst_v2 = false;  ///< the destination opted in too
	bool final_query = false; ///< was queried once more after the vCPUs stopped
	bool late_ack_request = false; ///< requested an ACK after the decision
	std::uint64_t precopy_bytes = 0;
	std::uint64_t stop_copy_bytes = 0;
	std::uint32_t reinits = 0, ack_requests = 0, acks = 0;
	std::uint64_t reported_stop_copy_size = 0; ///< MIG_DATA_SIZE at the decision
	bool size_implausible = false;             ///< that size was garbage
	double expected_ms = 0;  ///< reported size / measured bandwidth
	double stop_copy_ms = 0; ///< STOP_COPY entered -> stream loaded on the destination
	double downtime_ms = 0;  ///< vCPU stop -> destination loaded (RUNNING_P2P/STOP)
	double running_ms = 0;   ///< vCPU stop -> destination RUNNING
	std::optional<std::uint32_t> src_digest, dst_digest;
};

struct MigrationReport {
	bool ok = false;
	std::string error;
	AckMode ack = AckMode::PerDevice;
	bool parallel = true;
	unsigned iterations = 0;
	double precopy_ms = 0;
	double downtime_ms = 0;          ///< vCPU stop -> every destination RUNNING
	double expected_downtime_ms = 0; ///< from MIG_DATA_SIZE and the bandwidth
	double bandwidth_bytes_per_s = 0; ///< measured in precopy
	std::uint32_t acks_sent = 0;
	std::vector<DeviceReport> devices;
	/// Every device had digests on both sides and they agree.
	bool digests_match() const;
};

struct MigrationPair {
	Device *src = nullptr; ///< RUNNING
	Device *dst = nullptr; ///< any state; it is moved to RESUMING
};

/// Migrates each pair's source into its destination. run() never throws
/// for a failed migration: the report says why, sources are returned to
/// RUNNING and destinations reset.
class Migrator {
public:
	/// Opts the devices in to PRECOPY_INFOv2 (MigratorOptions::precopy_v2);
	/// never throws: an opt-in that fails other than with ENOTTY fails
	/// run().
	Migrator(std::vector<MigrationPair> pairs, MigratorOptions opt);
	MigrationReport run();

private:
	struct OptIn {
		bool src = false, dst = false;
	};
	void opt_in(std::size_t i, bool source_only);

	std::vector<MigrationPair> pairs_;
	MigratorOptions opt_;
	std::vector<OptIn> opt_in_;
	std::string setup_error_;
};

} // namespace vfiomig
