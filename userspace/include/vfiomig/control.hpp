// The vfio_mig_emu control plane (generic netlink family "vfio_mig_emu",
// kmod/include/uapi/vfio_mig_emu.h): typed calls for every command, the
// "events" multicast group, and names for sites, triggers, effects, knobs
// and events both ways (for the CLI).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "vfiomig/fd.hpp"
#include "vfiomig/state.hpp"
#include "vfiomig/stream.hpp"

struct nl_sock;

namespace vfiomig::control {

/// VFIO_MIG_EMU_ANY_STATE: an arc end matching every state.
inline constexpr std::uint32_t kAnyState = 0xffffffffu;

/// enum vfio_mig_emu_fault_site.
enum class Site : std::uint32_t {
	SetState = 1, Read = 2, Write = 3, PrecopyInfo = 4, DataSize = 5, Reset = 6, Open = 7,
};
/// enum vfio_mig_emu_fault_trigger.
enum class Trigger : std::uint32_t { Nth = 1, EveryNth = 2, FirstN = 3, Random = 4 };
/// enum vfio_mig_emu_fault_effect.
enum class Effect : std::uint32_t {
	Fail = 1, FailToError = 2, Delay = 3, ShortIo = 4, Corrupt = 5, GarbageSize = 6,
};
/// enum vfio_mig_emu_reinit_policy.
enum class ReinitPolicy : std::uint32_t { Fold = 0, Discard = 1 };
/// enum vfio_mig_emu_workload.
enum class Workload : std::uint32_t { Dirty = 1, Reconfig = 2 };
/// enum vfio_mig_emu_session.
enum class SessionKind : std::uint32_t { Saving = 1, Resuming = 2 };
/// The event commands (VFIO_MIG_EMU_CMD_EVENT_*).
enum class EventKind : std::uint32_t { State = 9, Session = 10, Fault = 11, Critical = 12, Reset = 13 };

inline constexpr Site kAllSites[] = {Site::SetState, Site::Read, Site::Write, Site::PrecopyInfo,
				     Site::DataSize, Site::Reset, Site::Open};
inline constexpr Effect kAllEffects[] = {Effect::Fail, Effect::FailToError, Effect::Delay,
					 Effect::ShortIo, Effect::Corrupt, Effect::GarbageSize};
inline constexpr Trigger kAllTriggers[] = {Trigger::Nth, Trigger::EveryNth, Trigger::FirstN, Trigger::Random};

/// Upper-case names as the uAPI spells them ("SET_STATE", "FAIL_TO_ERROR",
/// "EVERY_NTH", "DISCARD", "RECONFIG", "SAVING", "STATE"); parsers take
/// any case and '-' for '_'.
std::string site_name(Site s);
std::string trigger_name(Trigger t);
std::string effect_name(Effect e);
std::string reinit_policy_name(ReinitPolicy p);
std::string workload_name(Workload w);
std::string session_kind_name(SessionKind k);
std::string event_kind_name(EventKind k);
std::optional<Site> parse_site(std::string_view name);
std::optional<Trigger> parse_trigger(std::string_view name);
std::optional<Effect> parse_effect(std::string_view name);
std::optional<ReinitPolicy> parse_reinit_policy(std::string_view name);
std::optional<Workload> parse_workload(std::string_view name);
std::optional<EventKind> parse_event_kind(std::string_view name);
/// True when the uAPI's site/effect table allows `e` at `s`.
bool effect_allowed(Site s, Effect e);

/// Knob names ("ARC_DELAY", "LOAD_NS_PER_KIB", ...) by KNOB_* attribute,
/// and back.
std::string knob_name(std::uint32_t knob_attr);
std::optional<std::uint32_t> parse_knob(std::string_view name);

/// An arc end: a settable state (1..7) or ANY ("ANY", "*").
std::string arc_state_name(std::uint32_t s);
std::optional<std::uint32_t> parse_arc_state(std::string_view name);
/// An errno by name ("EIO", "eio") or number ("5") that FAULT_ERRNO
/// takes: 1..VFIO_MIG_EMU_MAX_FAULT_ERRNO (133), the errnos userspace can
/// see; kernel-internal ones (ERESTARTSYS, 512) give std::nullopt.
std::optional<int> parse_errno(std::string_view text);
/// VFIO_MIG_EMU_MAX_FAULT_ERRNO.
inline constexpr int kMaxFaultErrno = 133;

/// Seeded driver bugs (enum vfio_mig_emu_quirk): bit numbers, stable
/// lower-case names ("flags-echo-after-v2") and a one-line description
/// of the real-driver deviation each imitates.
inline constexpr unsigned kQuirkCount = 22; ///< VFIO_MIG_EMU_QUIRK_COUNT (checked in control.cpp)
std::string quirk_name(unsigned bit);        ///< "quirk(N)" for an unknown bit
std::string quirk_description(unsigned bit); ///< empty for an unknown bit
/// Takes a name (any case, '_' for '-') or a bit number.
std::optional<unsigned> parse_quirk(std::string_view name);
/// Every quirk bit set.
std::uint64_t all_quirks();
/// "a,b" for a mask, "none" for 0.
std::string describe_quirks(std::uint64_t mask);

/// Per-device counters (enum vfio_mig_emu_counter).
struct Counters {
	std::uint64_t transitions = 0, transition_errors = 0, bytes_saved = 0, bytes_loaded = 0;
	std::uint64_t precopy_queries = 0, faults_hit = 0, resets = 0;
};

/// Precopy figures: initial/dirty only while a session is in PRE_COPY(_P2P).
struct Precopy {
	std::optional<std::uint64_t> initial_bytes, dirty_bytes;
	std::uint64_t stop_copy_bytes = 0;
};

/// Kernel memory the module holds for a device (A_KMEM), bytes.
struct Kmem {
	std::uint64_t pages = 0, bitmaps = 0, buffers = 0, resources = 0;
	std::uint64_t digest_cache = 0; ///< KMEM_DIGEST: the digest's CRC cache
	std::uint64_t total() const { return pages + bitmaps + buffers + resources + digest_cache; }
};

/// One KNOB_ARC_DELAY nest.
struct ArcDelay {
	std::uint32_t from = kAnyState, to = kAnyState;
	std::uint32_t delay_us = 0;
};

/// Knobs: in set_knobs() only the fields set are sent; replies fill all
/// (arc_delays lists every arc with a non-zero delay).
struct Knobs {
	std::vector<ArcDelay> arc_delays;
	std::optional<std::uint32_t> load_ns_per_kib, load_us_per_resource;
	std::optional<std::uint64_t> mem_size;
	std::optional<std::uint32_t> resource_bytes, dirty_rate;
	std::optional<ReinitPolicy> reinit_policy;
	/// SET PRECOPY_INFOv2 fails with ENOTTY (a driver predating it).
	std::optional<bool> refuse_precopy_v2;
};

/// DEV_GET reply.
struct DeviceInfo {
	std::string uuid;
	std::uint32_t profile = 0; ///< enum vfio_mig_emu_profile
	std::uint32_t state = 0;   ///< enum vfio_device_mig_state
	std::uint64_t mem_size = 0;
	bool open = false;
	std::uint32_t sessions = 0;
	/// Only when asked for (DeviceQuery::digest; needs CAP_NET_ADMIN).
	std::optional<std::uint32_t> digest;
	std::uint32_t nr_resources = 0;
	Counters counters;
	Precopy precopy;
	Knobs knobs;
	std::optional<Kmem> kmem; ///< absent from modules without A_KMEM
};

/// What a DEV_GET asks for beyond the cheap fields (A_QUERY).
struct DeviceQuery {
	/// A_DIGEST: a crc32c over every page of device memory. The kernel
	/// refuses it (EPERM) without CAP_NET_ADMIN.
	bool digest = false;
};

/// STATS_GET reply: module-wide live objects.
struct Stats {
	std::uint32_t devices = 0, files = 0, buffers = 0, pages = 0;
};

/// A fault: what FAULT_ADD takes (unset optionals are not sent, so the
/// kernel's defaults apply) and what FAULT_GET reports (all filled).
struct Fault {
	std::uint32_t id = 0; ///< reply only
	Site site = Site::SetState;
	std::optional<std::uint32_t> from, to; ///< SET_STATE only; ANY by default
	std::optional<Trigger> trigger;        ///< EVERY_NTH with N = 1 by default
	std::optional<std::uint32_t> n;
	std::optional<std::uint32_t> probability_ppm;
	std::optional<std::uint64_t> seed;
	Effect effect = Effect::Fail;
	std::optional<std::uint32_t> err; ///< FAIL effects; EIO by default
	std::optional<std::uint32_t> delay_us;
	std::uint64_t calls = 0, hits = 0; ///< reply only
};
/// "SET_STATE(RUNNING->STOP) NTH 1 FAIL EXDEV" (+ " calls 2 hits 1" when
/// `counts`).
std::string describe(const Fault &f, bool counts = true);

/// A decoded event of the "events" group.
struct Event {
	EventKind kind = EventKind::State;
	std::string uuid;
	std::uint64_t seq = 0;
	std::uint64_t timestamp_ns = 0; ///< ktime_get_ns() (CLOCK_MONOTONIC)
	std::optional<std::uint32_t> from, to; ///< STATE, RESET (from), FAULT at SET_STATE
	std::uint32_t state = 0;               ///< STATE: the state after the step
	std::uint32_t err = 0;                 ///< STATE: 0 or the positive errno
	SessionKind session = SessionKind::Saving;
	bool session_open = false;
	std::uint32_t fault_id = 0;
	std::optional<Fault> fault; ///< FAULT: as FAULT_GET shows it
	std::uint32_t nr_resources = 0; ///< CRITICAL: total now
	std::uint64_t bytes = 0;        ///< CRITICAL: critical bytes added
};
/// "STATE RUNNING->STOP ok (now STOP)", "SESSION saving open", ...
std::string describe(const Event &e);

/// An error of a control-plane request: the call, the device, the errno and
/// the kernel's extack message. what(): "KNOBS_SET on 6f1c...: Numerical
/// result out of range (ERANGE): <extack>".
class ControlError : public Error {
public:
	/// `attribute`: the request attribute the kernel pointed at, if any
	/// (see RawReply::attribute).
	ControlError(int err, std::string call, std::string uuid, std::string extack, std::string attribute = {});
	const std::string &call() const noexcept { return call_; }
	const std::string &uuid() const noexcept { return uuid_; }
	/// NLMSGERR_ATTR_MSG, empty when the kernel gave none.
	const std::string &extack() const noexcept { return extack_; }
	/// The offending attribute and its valid range, e.g.
	/// "A_KNOBS/KNOB_DIRTY_RATE, valid 0..262144"; empty when none.
	const std::string &attribute() const noexcept { return attribute_; }
	const char *what() const noexcept override { return full_.c_str(); }

private:
	std::string call_, uuid_, extack_, attribute_, full_;
};

struct NlSockDeleter {
	void operator()(nl_sock *sk) const noexcept;
};
using NlSock = std::unique_ptr<nl_sock, NlSockDeleter>;

/// Builds a raw attribute area in host byte order (requests, and
/// hand-built malformed messages for tests).
class AttrBuf {
public:
	AttrBuf &u8(std::uint16_t type, std::uint8_t v);
	AttrBuf &u32(std::uint16_t type, std::uint32_t v);
	AttrBuf &u64(std::uint16_t type, std::uint64_t v);
	/// A NUL-terminated string.
	AttrBuf &str(std::uint16_t type, std::string_view v);
	/// Any payload, e.g. a string without its NUL or a wrong-sized integer.
	AttrBuf &raw(std::uint16_t type, ByteSpan payload);
	/// Opens a nest (NLA_F_NESTED is set); returns its position for end_nest().
	std::size_t begin_nest(std::uint16_t type);
	void end_nest(std::size_t at);
	const Bytes &data() const { return buf_; }

private:
	Bytes buf_;
};

/// The outcome of a raw request (for malformed-message tests).
struct RawReply {
	int err = 0;               ///< 0 or the positive errno of the ack
	std::string extack;        ///< NLMSGERR_ATTR_MSG
	/// What NLMSGERR_ATTR_OFFS / _POLICY / _MISS_TYPE point at, named
	/// against the request: "A_KNOBS/KNOB_DIRTY_RATE, valid 0..262144",
	/// "missing A_UUID". Empty when the kernel named nothing.
	std::string attribute;
	std::vector<Bytes> messages; ///< attribute areas of the replies
};

/// A socket on the family; every call is synchronous and throws
/// ControlError. Not thread-safe (one per thread).
class Client {
public:
	/// Resolves the family and its "events" group by name (ENOENT when
	/// the module is not loaded).
	static Client open();

	std::vector<DeviceInfo> devices(DeviceQuery q = {});
	DeviceInfo device(const std::string &uuid, DeviceQuery q = {});
	Stats stats();
	/// Returns the knobs the kernel reports after the change.
	Knobs set_knobs(const std::string &uuid, const Knobs &k);
	/// Returns the new fault's id.
	std::uint32_t add_fault(const std::string &uuid, const Fault &f);
	/// FAULT_GET dump: every fault of the device with its counts.
	std::vector<Fault> faults(const std::string &uuid);
	/// FAULT_GET of one fault (doit).
	Fault fault(const std::string &uuid, std::uint32_t id);
	/// All faults of the device, or the one with `id`.
	void clear_faults(const std::string &uuid, std::optional<std::uint32_t> id = std::nullopt);
	void workload(const std::string &uuid, Workload action, std::uint32_t count);
	void reset_counters(const std::string &uuid);
	/// QUIRKS_SET: replaces the module-global quirk mask (no uuid: every
	/// device, present and future) or one device's own; a device behaves
	/// as the OR of both. Returns the mask the kernel reports after.
	/// Unknown bits: ControlError EINVAL, nothing changes.
	std::uint64_t set_quirks(std::uint64_t mask, const std::optional<std::string> &uuid = std::nullopt);
	/// QUIRKS_GET: the module-global mask, or the device's own.
	std::uint64_t quirks(const std::optional<std::string> &uuid = std::nullopt);

	/// Sends a hand-built request: genl header (cmd, version, reserved)
	/// followed by `attrs` verbatim; `nl_flags` are added to
	/// NLM_F_REQUEST | NLM_F_ACK. Never throws for a kernel error.
	RawReply raw_request(std::uint8_t cmd, ByteSpan attrs, std::uint16_t nl_flags = 0,
			     std::uint8_t version = 1, std::uint16_t reserved = 0);

	int family() const { return family_; }
	int events_group() const { return group_; }

private:
	RawReply transact(std::uint8_t cmd, ByteSpan attrs, std::uint16_t nl_flags, std::uint8_t version,
			  std::uint16_t reserved);
	std::vector<Bytes> call(const char *name, const std::string &uuid, std::uint8_t cmd, ByteSpan attrs,
				bool dump = false);

	NlSock sock_;
	int family_ = -1;
	int group_ = -1;
};

/// Membership of the "events" group on a socket of its own. Events come
/// out of pop() (blocking, with a timeout) or go to a callback on a thread
/// of the subscription (start()). stop() wakes a blocked reader. Joining
/// needs CAP_NET_ADMIN: the constructor throws ControlError EPERM without.
class EventSubscription {
public:
	EventSubscription();
	~EventSubscription();
	EventSubscription(const EventSubscription &) = delete;
	EventSubscription &operator=(const EventSubscription &) = delete;

	/// The next event; std::nullopt on timeout or once stopped. A negative
	/// timeout waits forever. Must not be mixed with start().
	std::optional<Event> pop(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));
	/// Every event received within `quiet` of the previous one.
	std::vector<Event> drain(std::chrono::milliseconds quiet = std::chrono::milliseconds(200));
	/// Delivers events to `cb` on a thread until stop().
	void start(std::function<void(const Event &)> cb);
	/// Wakes pop() and ends the callback thread; idempotent, any thread.
	void stop();
	/// Times the socket overran (events lost, seen as seq gaps).
	std::uint64_t overruns() const { return overruns_; }

private:
	bool receive(std::chrono::milliseconds timeout);

	NlSock sock_;
	int family_ = -1;
	Fd wake_; ///< eventfd written by stop()
	std::deque<Event> queue_;
	std::uint64_t overruns_ = 0;
	std::thread thread_;
};

/// Decodes an event message's attribute area (exposed for tests).
std::optional<Event> decode_event(std::uint8_t cmd, ByteSpan attrs);

} // namespace vfiomig::control
