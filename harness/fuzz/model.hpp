// What the fuzzer expects of the emulated device: pure functions from the
// model's view (state, session, profile flags, faults armed) and an
// operation's arguments to the results the uAPI and
// kmod/include/uapi/vfio_mig_emu.h allow.  No syscalls here, so every rule
// is unit-tested on the host (harness/unit/fuzz_model_test).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ops.hpp"
#include "vfiomig/state.hpp"

namespace vfiomig::fuzz {

/// The outcomes allowed for one call: success and/or a set of errnos.
struct Expect {
	bool ok = false;
	std::set<int> errnos;

	static Expect success() { return Expect{true, {}}; }
	static Expect fail(int e) { return Expect{false, {e}}; }
	Expect &or_ok() { ok = true; return *this; }
	Expect &or_err(int e) { errnos.insert(e); return *this; }
	Expect &or_errs(const std::set<int> &es) { errnos.insert(es.begin(), es.end()); return *this; }
	/// err 0 means success.
	bool allows(int err) const { return err == 0 ? ok : errnos.count(err) > 0; }
	/// "ok", "EINVAL", "ok or EBUSY", "EINVAL or ERANGE".
	std::string str() const;
};

/// Region writes that change the device are allowed in these states.
bool state_writable(State s);

/// A pread/pwrite of `size` bytes at `off` of region `index`, the device
/// in a state where writes are (not) accepted, `mem_size` bytes of device
/// memory (BAR2 is that rounded up to a power of two; the tail reads zero
/// and takes writes where memory writes are accepted); `value` is what a
/// 4-byte BAR0 write carries.  Success means all bytes.
Expect expect_region(std::uint32_t index, std::uint64_t off, std::uint64_t size, bool write, bool writable,
		     std::uint64_t mem_size, std::uint32_t value);

/// What a successful VFIO_DEVICE_FEATURE call returns in its payload.
enum class FeatureOut { None, MigrationFlags, DeviceState, DataSize };

struct FeatureExpect {
	Expect expect;
	FeatureOut out = FeatureOut::None;
	/// Success means the device opted in to PRECOPY_INFOv2.
	bool opts_in = false;
	/// Success may also fail with the DATA_SIZE faults' errnos.
	bool data_size_site = false;
};

/// VFIO_DEVICE_FEATURE with `flags` (index | GET/SET/PROBE | junk) and
/// `argsz` (header included) on the emulated device with `mig_flags`, as
/// the 6.12 vfio core and the module's device_feature decide it.  SET of
/// MIG_DEVICE_STATE must not be asked here (the fuzzer sends it through
/// SetState only).
FeatureExpect expect_feature(std::uint32_t flags, std::uint32_t argsz, std::uint64_t mig_flags);

/// The session effect of one arc.
enum class ArcEffect { None, StartSaving, EnterStopCopy, EndSaving, StartResuming, EndResuming };
ArcEffect arc_effect(State from, State to);

/// How SET MIG_DEVICE_STATE from `cur` to raw `target` must go on a device
/// with `mig_flags` when no fault interferes.
struct SetPlan {
	bool refused = false;     ///< EINVAL, nothing changes
	std::vector<State> path;  ///< arcs' ends (empty: already there)
	bool returns_fd = false;  ///< the last arc starts a session
	bool leaves_resuming = false; ///< the first arc is RESUMING -> STOP
};
SetPlan plan_set(State cur, std::uint32_t target, std::uint64_t mig_flags);

/// After a failed SET that followed `plan` from `cur`: how many arcs were
/// taken to reach `observed` (0 = none), or nullopt when `observed` is not
/// one of cur, the path's interior states (ERROR is handled by the caller).
std::optional<std::size_t> arcs_to(State cur, const std::vector<State> &path, State observed);

/// The arguments of a KNOB operation, as sent.
struct KnobRequest {
	KnobSel sel = kKnobArcDelay;
	std::uint64_t value = 0;
	std::uint32_t from = 0, to = 0; ///< ARC_DELAY only
	bool valid = false;             ///< inside the uAPI's limits
	std::string str() const;
};
KnobRequest knob_request(const Op &op);
/// KNOBS_SET's outcome; MEM_SIZE is refused (EBUSY) while the fd is open.
Expect expect_knob(const KnobRequest &k, bool device_open);

/// The arguments of a FAULT_ADD operation, as sent (unset: not sent).
struct FaultRequest {
	std::uint32_t site = 0, effect = 0;
	std::optional<std::uint32_t> trigger, n, ppm, err, delay_us, from, to;
	std::optional<std::uint64_t> seed;
	bool valid = false;
	std::string str() const;
};
/// Fault effects the fuzzer never arms: FAIL_TO_ERROR at the data-file
/// sites would change the state under operations that hold the device
/// shared (the model could not follow); they become FAIL.
FaultRequest fault_request(const Op &op);
/// FAULT_ADD's outcome with `armed` faults on the device already.
Expect expect_fault_add(const FaultRequest &f, std::size_t armed);
/// The uAPI's site/effect table.
bool fault_effect_allowed(std::uint32_t site, std::uint32_t effect);

/// The errnos the fuzzer gives FAIL faults: ones the module never returns
/// by itself, so a failure names the fault that caused it.
inline constexpr int kFaultErrnos[] = {18 /* EXDEV */, 67 /* ENOLINK */, 121 /* EREMOTEIO */,
				       71 /* EPROTO */, 70 /* ECOMM */};

/// VFIO_MIG_GET_PRECOPY_INFO's initial_bytes rule: it only decreases
/// within a session, except on the query that reports REINIT.
bool initial_bytes_ok(std::optional<std::uint64_t> last, std::uint64_t now, bool reinit);

} // namespace vfiomig::fuzz
