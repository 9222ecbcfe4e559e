// The calls and conditions of the ioctl matrix and how a row is run (see
// ioctl_matrix_cells.hpp; the expectations live in fixtures/ioctl-matrix.tsv).
#include "ioctl_matrix_cells.hpp"

#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fresh.hpp"

namespace vfiomig::test::cells {

namespace {

using matrix::Outcome;
using matrix::Row;

constexpr std::uint32_t kGet = VFIO_DEVICE_FEATURE_GET;
constexpr std::uint32_t kSet = VFIO_DEVICE_FEATURE_SET;
constexpr std::uint32_t kProbe = VFIO_DEVICE_FEATURE_PROBE;
constexpr std::size_t kHdr = sizeof(struct vfio_device_feature); // argsz + flags
constexpr std::size_t kPrecopyInfo = sizeof(uapi::precopy_info);
constexpr std::size_t kExtra = 64;       // argsz_larger: bytes past the struct
constexpr std::uint8_t kCanary = 0xa5;   // ... and what they hold
constexpr std::size_t kIoLen = 4096;     // read()/write() length
constexpr std::uint32_t kUnknownFeatureFlag = 1u << 19; // next to PROBE, undefined
constexpr std::uint32_t kUnknownInfoFlag = 0x80000000u;
constexpr std::uint32_t kJunkInfoFlags = 0xdead; // REINIT and undefined bits

enum class Kind { Feature, PrecopyInfo, Read, Write, Poll, Lseek, Pread, Pwrite, Mmap };
/// The fd a call is made on: the device fd or a data fd of either kind.
enum class Role { Device, Saving, Resuming };

/// Where the device is, and which session is open, before the call.
enum class Scene {
	CallDefault,     ///< the call's own (RUNNING, PRE_COPY, STOP_COPY, RESUMING)
	RoleSession,     ///< a session of the call's role: STOP_COPY or RESUMING
	Running,
	Error,           ///< RESUMING -> STOP with nothing written
	PreCopy,
	PreCopyP2P,
	StopCopy,
	PreCopyThenStopCopy, ///< the PRE_COPY session's fd, now in STOP_COPY
	TemporaryEnd,    ///< PRE_COPY, everything read (read() said ENOMSG)
	EndOfStream,     ///< STOP_COPY, everything read (read() said 0)
	Resuming,
	Rejected,        ///< RESUMING after a write the device refused
	ReinitPending,   ///< PRE_COPY with the v2 opt-in, REINIT not yet reported
	OptInInPreCopy,  ///< PRE_COPY entered without the v2 opt-in, opted in after
};

/// What happens to the session (or device) after the scene, before the call.
enum class Lifecycle { None, SessionEnded, Reset, DeviceClosed };

/// Where the call's struct or buffer lies in memory.
enum class Place {
	Normal,
	Null,
	ReadOnly,        ///< mapped PROT_READ
	HeaderStraddles, ///< argsz mapped, flags in a PROT_NONE page
	PayloadUnmapped, ///< the header mapped, the payload in a PROT_NONE page
	Straddles,       ///< starts mapped, ends in a PROT_NONE page
	Unmapped,        ///< wholly in a PROT_NONE page
};

enum class Argsz { Exact, HeaderShort, TooSmall, Zero, Larger };
enum class Dir { Call, Opposite, GetSet, None, Probe, ProbeGet, ProbeSet, ProbeGetSet };
enum class FdChoice { Role, Device, Saving, Resuming };

/// Extra checks made when the call succeeded.
enum class Verify { None, Result, Canary, StreamIntact, FlagsEchoed, FlagsOutput, ReinitKept, NotOptedIn };

struct CallDef {
	std::string name;
	Kind kind;
	Role role;
	std::uint32_t feature = 0;   ///< Feature: VFIO_DEVICE_FEATURE_* index
	std::uint32_t dir = 0;       ///< Feature: the GET or SET the call makes
	std::uint32_t supported = 0; ///< Feature: the GET/SET the uAPI defines
	std::size_t payload = 0;     ///< Feature: bytes of data[]
	Scene scene = Scene::Running;
	bool v2_device = false;      ///< runs on the PRECOPY_INFOv2 opted-in instance
	std::vector<std::string> conditions;
};

struct CondDef {
	Scene scene = Scene::CallDefault;
	Lifecycle life = Lifecycle::None;
	Place place = Place::Normal;
	Argsz argsz = Argsz::Exact;
	Dir dir = Dir::Call;
	FdChoice fd = FdChoice::Role;
	std::uint32_t extra_flags = 0;           ///< Feature: OR-ed into flags
	std::optional<std::uint32_t> target = std::nullopt; ///< mig_state_set: device_state
	std::uint32_t info_flags = 0;            ///< precopy_info: flags passed in
	std::size_t len = kIoLen;                ///< read()/write() length
	Verify verify = Verify::None;
	bool v2_device = false;
	bool fresh_device = false;               ///< an instance of its own (the opt-in dies with it)
};

const std::map<std::string, CondDef> &conditions()
{
	static const std::map<std::string, CondDef> m = [] {
		std::map<std::string, CondDef> c;
		// VFIO_DEVICE_FEATURE calls.
		c["valid"] = {.verify = Verify::Result};
		c["argsz_header_short"] = {.argsz = Argsz::HeaderShort};
		c["argsz_too_small"] = {.argsz = Argsz::TooSmall};
		c["argsz_zero"] = {.argsz = Argsz::Zero};
		c["argsz_larger"] = {.argsz = Argsz::Larger, .verify = Verify::Canary};
		c["unknown_flag"] = {.extra_flags = kUnknownFeatureFlag, .info_flags = kUnknownInfoFlag,
				     .verify = Verify::FlagsEchoed};
		c["unknown_flag_v2"] = {.scene = Scene::PreCopy, .info_flags = kUnknownInfoFlag,
					.verify = Verify::FlagsOutput, .v2_device = true};
		c["opt_in_during_pre_copy"] = {.scene = Scene::OptInInPreCopy, .info_flags = kJunkInfoFlags,
					       .verify = Verify::FlagsOutput, .fresh_device = true};
		c["get_and_set"] = {.dir = Dir::GetSet};
		c["no_direction"] = {.dir = Dir::None};
		c["opposite_direction"] = {.dir = Dir::Opposite};
		c["probe"] = {.dir = Dir::Probe};
		c["probe_get"] = {.dir = Dir::ProbeGet};
		c["probe_set"] = {.dir = Dir::ProbeSet};
		c["probe_get_set"] = {.dir = Dir::ProbeGetSet};
		c["probe_does_not_opt_in"] = {.dir = Dir::Probe, .verify = Verify::NotOptedIn, .fresh_device = true};
		c["probe_payload_unmapped"] = {.place = Place::PayloadUnmapped, .dir = Dir::Probe};
		c["null_pointer"] = {.place = Place::Null, .verify = Verify::StreamIntact};
		c["header_straddles"] = {.place = Place::HeaderStraddles};
		c["payload_unmapped"] = {.place = Place::PayloadUnmapped};
		c["payload_straddles"] = {.place = Place::Straddles};
		c["payload_readonly"] = {.place = Place::ReadOnly};
		c["wrong_fd_saving"] = {.scene = Scene::StopCopy, .fd = FdChoice::Saving};
		c["wrong_fd_resuming"] = {.scene = Scene::Resuming, .fd = FdChoice::Resuming};
		c["wrong_fd_device"] = {.scene = Scene::StopCopy, .fd = FdChoice::Device};
		c["in_error"] = {.scene = Scene::Error};
		// SET MIG_DEVICE_STATE targets (from RUNNING unless said).
		c["to_same_state"] = {.target = static_cast<std::uint32_t>(State::Running), .verify = Verify::Result};
		c["to_error"] = {.target = static_cast<std::uint32_t>(State::Error)};
		c["to_state_nr"] = {.target = kNumStates};
		c["to_state_max"] = {.target = 0xffffffffu};
		c["to_pre_copy"] = {.target = static_cast<std::uint32_t>(State::PreCopy), .verify = Verify::Result};
		c["to_running_p2p"] = {.target = static_cast<std::uint32_t>(State::RunningP2P), .verify = Verify::Result};
		c["to_pre_copy_p2p"] = {.target = static_cast<std::uint32_t>(State::PreCopyP2P),
					.verify = Verify::Result};
		c["stop_copy_to_pre_copy"] = {.scene = Scene::StopCopy,
					      .target = static_cast<std::uint32_t>(State::PreCopy)};
		c["in_error_to_error"] = {.scene = Scene::Error, .target = static_cast<std::uint32_t>(State::Error)};
		// Data fd scenes.
		c["in_pre_copy"] = {.scene = Scene::PreCopy};
		c["in_pre_copy_p2p"] = {.scene = Scene::PreCopyP2P};
		c["in_stop_copy"] = {.scene = Scene::StopCopy, .verify = Verify::StreamIntact};
		c["pre_copy_then_stop_copy"] = {.scene = Scene::PreCopyThenStopCopy};
		c["at_temporary_end"] = {.scene = Scene::TemporaryEnd};
		c["at_end_of_stream"] = {.scene = Scene::EndOfStream};
		c["in_resuming"] = {.scene = Scene::Resuming, .verify = Verify::StreamIntact};
		c["after_rejected_stream"] = {.scene = Scene::Rejected};
		c["zero_length"] = {.len = 0, .verify = Verify::StreamIntact};
		c["buffer_straddles"] = {.place = Place::Straddles, .verify = Verify::StreamIntact};
		c["buffer_readonly"] = {.place = Place::ReadOnly, .verify = Verify::StreamIntact};
		c["buffer_unmapped"] = {.place = Place::Unmapped, .verify = Verify::StreamIntact};
		c["readonly_reinit_pending"] = {.scene = Scene::ReinitPending, .place = Place::ReadOnly,
						.verify = Verify::ReinitKept, .v2_device = true};
		c["session_ended"] = {.scene = Scene::RoleSession, .life = Lifecycle::SessionEnded};
		c["after_reset"] = {.scene = Scene::RoleSession, .life = Lifecycle::Reset};
		c["device_fd_closed"] = {.scene = Scene::RoleSession, .life = Lifecycle::DeviceClosed};
		return c;
	}();
	return m;
}

CallDef feature_call(std::string name, std::uint32_t feature, std::uint32_t dir, std::uint32_t supported,
		     std::size_t payload, bool v2 = false)
{
	CallDef d{std::move(name), Kind::Feature, Role::Device, feature, dir, supported, payload, Scene::Running, v2, {}};
	d.conditions = {"valid",	 "argsz_header_short", "argsz_larger",		 "unknown_flag",
			"get_and_set",	 "no_direction",       "probe",			 "probe_get",
			"probe_set",	 "probe_get_set",      "probe_payload_unmapped", "null_pointer",
			"header_straddles", "payload_unmapped", "payload_readonly",	 "wrong_fd_saving",
			"wrong_fd_resuming", "in_error"};
	if (payload) {
		d.conditions.push_back("argsz_too_small");
		d.conditions.push_back("payload_straddles");
	}
	if (supported != (kGet | kSet))
		d.conditions.push_back("opposite_direction");
	return d;
}

CallDef fd_call(std::string name, Kind kind, Role role, Scene scene, std::vector<std::string> conds)
{
	return CallDef{std::move(name), kind, role, 0, 0, 0, 0, scene, false, std::move(conds)};
}

const std::vector<CallDef> &calls()
{
	static const std::vector<CallDef> v = [] {
		std::vector<CallDef> c;
		c.push_back(feature_call("migration", VFIO_DEVICE_FEATURE_MIGRATION, kGet, kGet, 8));
		c.push_back(feature_call("mig_state_get", VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, kGet, kGet | kSet, 8));
		CallDef set = feature_call("mig_state_set", VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, kSet, kGet | kSet, 8);
		for (const char *t : {"to_same_state", "to_error", "to_state_nr", "to_state_max", "to_pre_copy",
				      "to_running_p2p", "to_pre_copy_p2p", "stop_copy_to_pre_copy", "in_error_to_error"})
			set.conditions.push_back(t);
		c.push_back(set);
		c.push_back(feature_call("data_size", VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, kGet, kGet, 8));
		CallDef v2 = feature_call("precopy_v2", VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, kSet, kSet, 0, true);
		v2.conditions.push_back("probe_does_not_opt_in");
		c.push_back(v2);
		c.push_back(feature_call("logging_start", VFIO_DEVICE_FEATURE_DMA_LOGGING_START, kSet, kSet,
					 sizeof(struct vfio_device_feature_dma_logging_control)));
		c.push_back(feature_call("logging_stop", VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, kSet, kSet, 0));
		c.push_back(feature_call("logging_report", VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, kGet, kGet,
					 sizeof(struct vfio_device_feature_dma_logging_report)));
		const std::vector<std::string> ended = {"session_ended", "after_reset", "device_fd_closed"};
		auto with_ended = [&](std::vector<std::string> conds) {
			conds.insert(conds.end(), ended.begin(), ended.end());
			return conds;
		};
		c.push_back(fd_call("precopy_info", Kind::PrecopyInfo, Role::Saving, Scene::PreCopy,
				    with_ended({"in_pre_copy", "in_pre_copy_p2p", "argsz_too_small", "argsz_zero",
						"argsz_larger", "unknown_flag", "unknown_flag_v2", "opt_in_during_pre_copy", "null_pointer",
						"buffer_straddles", "buffer_readonly", "readonly_reinit_pending",
						"wrong_fd_device", "wrong_fd_resuming", "in_stop_copy",
						"pre_copy_then_stop_copy"})));
		c.push_back(fd_call("read", Kind::Read, Role::Saving, Scene::StopCopy,
				    with_ended({"in_pre_copy", "in_pre_copy_p2p", "at_temporary_end", "in_stop_copy",
						"pre_copy_then_stop_copy", "at_end_of_stream", "zero_length",
						"null_pointer", "buffer_straddles", "buffer_readonly",
						"wrong_fd_resuming"})));
		c.push_back(fd_call("write", Kind::Write, Role::Resuming, Scene::Resuming,
				    with_ended({"in_resuming", "after_rejected_stream", "zero_length", "null_pointer",
						"buffer_straddles", "buffer_unmapped", "wrong_fd_saving"})));
		c.push_back(fd_call("poll_saving", Kind::Poll, Role::Saving, Scene::StopCopy,
				    with_ended({"in_pre_copy", "at_temporary_end", "in_stop_copy", "at_end_of_stream"})));
		c.push_back(fd_call("poll_resuming", Kind::Poll, Role::Resuming, Scene::Resuming,
				    with_ended({"in_resuming", "after_rejected_stream"})));
		c.push_back(fd_call("lseek_saving", Kind::Lseek, Role::Saving, Scene::StopCopy, {"in_stop_copy"}));
		c.push_back(fd_call("lseek_resuming", Kind::Lseek, Role::Resuming, Scene::Resuming, {"in_resuming"}));
		c.push_back(fd_call("pread_saving", Kind::Pread, Role::Saving, Scene::StopCopy, {"in_stop_copy"}));
		c.push_back(fd_call("pwrite_resuming", Kind::Pwrite, Role::Resuming, Scene::Resuming, {"in_resuming"}));
		c.push_back(fd_call("mmap_saving", Kind::Mmap, Role::Saving, Scene::StopCopy, {"in_stop_copy"}));
		c.push_back(fd_call("mmap_resuming", Kind::Mmap, Role::Resuming, Scene::Resuming, {"in_resuming"}));
		return c;
	}();
	return v;
}

const CallDef &call_def(const std::string &name)
{
	for (const CallDef &c : calls()) {
		if (c.name == name)
			return c;
	}
	throw Error(EINVAL, "ioctl matrix: no call '" + name + "'");
}

/// Two pages, the second PROT_NONE: a struct placed across the boundary
/// faults part-way.
class GuardPages {
public:
	GuardPages()
	{
		page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
		void *p = mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			throw_error(errno, "mmap of the guard pages");
		base_ = static_cast<std::uint8_t *>(p);
		if (mprotect(base_ + page_, page_, PROT_NONE))
			throw_error(errno, "mprotect(PROT_NONE) of the guard page");
	}
	GuardPages(const GuardPages &) = delete;
	GuardPages &operator=(const GuardPages &) = delete;
	~GuardPages() { munmap(base_, 2 * page_); }

	/// Copies as much of `image` as `place` maps and returns the pointer
	/// the call gets. `header` is the part that stays mapped for
	/// PayloadUnmapped.
	std::uint8_t *place(Place place, ByteSpan image, std::size_t header)
	{
		std::size_t mapped = image.size();
		switch (place) {
		case Place::Null:
			return nullptr;
		case Place::Normal:
		case Place::ReadOnly:
			break;
		case Place::HeaderStraddles:
			mapped = 4;
			break;
		case Place::PayloadUnmapped:
			mapped = header;
			break;
		case Place::Straddles:
			mapped = header ? header + std::max<std::size_t>(1, (image.size() - header) / 2)
					: std::min<std::size_t>(16, image.size() / 2);
			break;
		case Place::Unmapped:
			mapped = 0;
			break;
		}
		mapped = std::min(mapped, image.size());
		std::uint8_t *p = place == Place::Normal || place == Place::ReadOnly ? base_ : base_ + page_ - mapped;
		std::memcpy(p, image.data(), mapped);
		if (place == Place::ReadOnly && mprotect(base_, page_, PROT_READ))
			throw_error(errno, "mprotect(PROT_READ) of the buffer page");
		return p;
	}
	/// Makes the buffer page writable again (after a ReadOnly call).
	void restore() { mprotect(base_, page_, PROT_READ | PROT_WRITE); }

private:
	std::uint8_t *base_ = nullptr;
	std::size_t page_ = 0;
};

/// Everything one row needs while it runs. Declaration order is
/// destruction order in reverse: the session closes before the device.
struct Ctx {
	const Row *row = nullptr;
	const CallDef *call = nullptr;
	const CondDef *cond = nullptr;
	Devices *devs = nullptr;
	std::unique_ptr<Fresh> fresh;
	Device *dev = nullptr;
	Bytes stream;               ///< a saved stream (resuming scenes)
	MigrationSession session;   ///< the scene's session
	bool session_live = false;  ///< the session has not been ended
	bool device_closed = false;
	Fd returned;                ///< a data fd SET MIG_DEVICE_STATE returned
	Bytes consumed;             ///< stream bytes a read cell took
	std::size_t written = 0;    ///< stream bytes a write cell gave

	std::string where() const
	{
		return "row " + std::to_string(row->line) + " (" + row->call + " x " + row->condition + ", " +
		       devs->param.name() + ")";
	}
};

Bytes save_stream(Device &d)
{
	Bytes out;
	MigrationSession s = d.set_state(State::StopCopy);
	PumpOptions o;
	o.until = PumpUntil::Eof;
	o.capture = &out;
	pump(s.data, nullptr, o).value();
	d.set_state(State::Stop);
	return out;
}

Scene resolve_scene(const Ctx &c)
{
	switch (c.cond->scene) {
	case Scene::CallDefault:
		return c.call->scene;
	case Scene::RoleSession:
		return c.call->role == Role::Resuming ? Scene::Resuming : Scene::StopCopy;
	default:
		return c.cond->scene;
	}
}

/// Brings the device into scene `s`. Returns why not when a foreign target
/// cannot be brought there through the uAPI alone (the cell is skipped);
/// on our device every scene is reachable and a failure throws.
std::optional<std::string> enter_scene(Ctx &c, Scene s)
{
	Device &d = *c.dev;
	const bool foreign = c.devs->param.foreign();
	if (s == Scene::ReinitPending && foreign)
		return "a pending REINIT needs new initial bytes, which vfio_mig_emu makes on a reconfiguration "
		       "(BAR0 doorbell); the uAPI has no way to ask a driver for them";
	switch (s) {
	case Scene::CallDefault:
	case Scene::RoleSession:
	case Scene::Running:
		break;
	case Scene::Error: {
		d.set_state(State::Stop);
		MigrationSession r = d.set_state(State::Resuming);
		auto st = d.try_set_state(State::Stop);
		// Entering ERROR after a failed resume is the driver's choice
		// (vfio.h: "the device may be left in ERROR"): ours does.
		if (st.ok() && foreign)
			return "RESUMING->STOP with nothing written succeeded: the uAPI offers no other way into ERROR";
		if (st.ok())
			throw Error(EPROTO, "RESUMING->STOP with nothing written succeeded on " + d.label() +
						    ": cannot reach ERROR for " + c.where());
		if (State now = d.get_state(); now != State::Error) {
			if (foreign)
				return "RESUMING->STOP with nothing written failed (" + st.describe() + ") and left " +
				       state_name(now) + ", not ERROR (vfio.h leaves that to the driver)";
			throw Error(EPROTO, "RESUMING->STOP with nothing written left " + d.label() + " in " +
						    state_name(now) + ", not ERROR, for " + c.where());
		}
		break;
	}
	case Scene::PreCopy:
	case Scene::TemporaryEnd:
	case Scene::ReinitPending:
		c.session = d.set_state(State::PreCopy);
		break;
	case Scene::OptInInPreCopy:
		c.session = d.set_state(State::PreCopy);
		d.try_precopy_v2_opt_in().value();
		break;
	case Scene::PreCopyP2P:
		c.session = d.set_state(State::PreCopyP2P);
		break;
	case Scene::StopCopy:
	case Scene::EndOfStream:
		c.session = d.set_state(State::StopCopy);
		break;
	case Scene::PreCopyThenStopCopy:
		c.session = d.set_state(State::PreCopy);
		d.set_state(State::StopCopy);
		break;
	case Scene::Resuming:
	case Scene::Rejected:
		c.stream = save_stream(d);
		c.session = d.set_state(State::Resuming);
		break;
	}
	if (s != Scene::Running && s != Scene::Error && !c.session.has_data())
		throw Error(EPROTO, "entering " + state_name(d.get_state()) + " on " + d.label() +
					    " returned no data fd, for " + c.where());
	c.session_live = c.session.has_data();
	if (s == Scene::TemporaryEnd) {
		PumpOptions o;
		o.until = PumpUntil::NoMsg;
		pump(c.session.data, nullptr, o).value();
	} else if (s == Scene::EndOfStream) {
		pump(c.session.data, nullptr, {}).value();
	} else if (s == Scene::Rejected) {
		Bytes junk(kIoLen, 0xee);
		auto w = c.session.data.write(junk);
		if (w.ok() && foreign)
			return "the resuming fd accepted " + std::to_string(kIoLen) +
			       " bytes of junk (a driver may check only at RESUMING->STOP): no rejected stream to test";
		if (w.ok())
			throw Error(EPROTO, "the resuming fd of " + d.label() + " accepted " + std::to_string(kIoLen) +
						    " bytes of junk, for " + c.where());
	} else if (s == Scene::ReinitPending) {
		emu::reconfigure(d, 2).value();
	}
	return std::nullopt;
}

void apply_lifecycle(Ctx &c)
{
	switch (c.cond->life) {
	case Lifecycle::None:
		return;
	case Lifecycle::SessionEnded:
		// Saving: STOP_COPY -> STOP. Resuming: RESUMING -> STOP with the
		// stream unwritten, which fails and may leave ERROR; either way the
		// session is over.
		(void)c.dev->try_set_state(State::Stop);
		break;
	case Lifecycle::Reset:
		c.dev->reset();
		break;
	case Lifecycle::DeviceClosed: {
		Device closing = std::move(c.fresh->dev);
		c.device_closed = true;
		break;
	}
	}
	c.session_live = false;
}

FdView call_fd(const Ctx &c)
{
	FdChoice f = c.cond->fd;
	if (f == FdChoice::Role)
		f = c.call->role == Role::Device ? FdChoice::Device
		    : c.call->role == Role::Saving ? FdChoice::Saving
						   : FdChoice::Resuming;
	if (f == FdChoice::Device)
		return c.dev->fd();
	return c.session.data.fd();
}

std::uint32_t feature_flags(const CallDef &call, Dir dir)
{
	std::uint32_t other = call.dir == kGet ? kSet : kGet;
	switch (dir) {
	case Dir::Call:
		return call.dir;
	case Dir::Opposite:
		return other;
	case Dir::GetSet:
		return kGet | kSet;
	case Dir::None:
		return 0;
	case Dir::Probe:
		return kProbe;
	case Dir::ProbeGet:
		return kProbe | kGet;
	case Dir::ProbeSet:
		return kProbe | kSet;
	case Dir::ProbeGetSet:
		return kProbe | kGet | kSet;
	}
	return 0;
}

template <typename T>
void put(Bytes &b, std::size_t off, T v)
{
	std::memcpy(b.data() + off, &v, sizeof(v));
}
template <typename T>
T get(const std::uint8_t *p, std::size_t off)
{
	T v;
	std::memcpy(&v, p + off, sizeof(v));
	return v;
}

Outcome from_ret(long ret)
{
	return ret < 0 ? Outcome::error(errno) : Outcome::success();
}

/// After a PROBE of the PRECOPY_INFOv2 opt-in on an instance that never
/// opted in: a PRE_COPY query's flags are still the caller's (reserved,
/// echoed), not an output cleared to REINIT-or-nothing.
void check_not_opted_in(Ctx &c)
{
	MigrationSession s = c.dev->set_state(State::PreCopy);
	uapi::precopy_info info{};
	info.argsz = sizeof(info);
	info.flags = kJunkInfoFlags;
	if (::ioctl(s.data.fd().get(), VFIO_MIG_GET_PRECOPY_INFO, &info)) {
		ADD_FAILURE() << c.where() << ": VFIO_MIG_GET_PRECOPY_INFO in PRE_COPY after the PROBE: "
			      << errno_name(errno);
		return;
	}
	EXPECT_EQ(info.flags, kJunkInfoFlags)
		<< c.where() << ": the PROBE opted in: flags 0x" << std::hex << kJunkInfoFlags << " came back as 0x"
		<< info.flags << " (an output) from a query of an instance that only probed";
}

/// VFIO_DEVICE_FEATURE: struct vfio_device_feature followed by the payload.
Outcome run_feature(Ctx &c, GuardPages &g, std::optional<State> before)
{
	const CallDef &call = *c.call;
	const CondDef &cond = *c.cond;
	std::size_t size = kHdr + call.payload;
	std::uint32_t argsz = static_cast<std::uint32_t>(size);
	switch (cond.argsz) {
	case Argsz::Exact:
		break;
	case Argsz::HeaderShort:
		argsz = 4;
		break;
	case Argsz::TooSmall:
		argsz = static_cast<std::uint32_t>(size - 1);
		break;
	case Argsz::Zero:
		argsz = 0;
		break;
	case Argsz::Larger:
		argsz = static_cast<std::uint32_t>(size + kExtra);
		size += kExtra;
		break;
	}
	Bytes image(size, kCanary);
	std::fill(image.begin(), image.begin() + static_cast<long>(kHdr + call.payload), 0);
	put<std::uint32_t>(image, 0, argsz);
	put<std::uint32_t>(image, 4, call.feature | feature_flags(call, cond.dir) | cond.extra_flags);
	switch (call.feature) {
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
		put<std::uint32_t>(image, kHdr, cond.target.value_or(static_cast<std::uint32_t>(State::Stop)));
		put<std::int32_t>(image, kHdr + 4, -1);
		break;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
		// page_size 4 KiB and no range: the matrix knows no IOVA range an
		// unknown device could track, so even a "valid" start is refused
		// by the core (num_ranges == 0).
		put<std::uint64_t>(image, kHdr, 4096);
		break;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		put<std::uint64_t>(image, kHdr + 8, 4096);  // length
		put<std::uint64_t>(image, kHdr + 16, 4096); // page_size
		break;
	}
	std::uint8_t *p = g.place(cond.place, image, kHdr);
	long ret = ::ioctl(call_fd(c).get(), VFIO_DEVICE_FEATURE, p);
	Outcome o = from_ret(ret);
	if (cond.place == Place::ReadOnly)
		g.restore();
	bool readable = cond.place == Place::Normal || cond.place == Place::ReadOnly;
	if (call.feature == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE && call.dir == kSet && readable) {
		auto fd = get<std::int32_t>(p, kHdr + 4);
		if (!o.err && fd >= 0)
			c.returned.reset(fd);
	}
	if (o.err || !readable)
		return o;
	if (cond.verify == Verify::Canary) {
		for (std::size_t i = kHdr + call.payload; i < size; i++)
			EXPECT_EQ(p[i], kCanary) << c.where() << ": byte " << i - kHdr
						 << " of data[], past the struct, was written (argsz larger than the struct)";
	}
	if (cond.verify != Verify::Result && cond.verify != Verify::Canary)
		return o;
	if (cond.verify == Verify::NotOptedIn && !o.err)
		check_not_opted_in(c);
	if (feature_flags(call, cond.dir) & kProbe)
		return o;
	switch (call.feature) {
	case VFIO_DEVICE_FEATURE_MIGRATION:
		EXPECT_EQ(mig_flags_name(get<std::uint64_t>(p, kHdr)), mig_flags_name(c.devs->target.mig_flags))
			<< c.where() << ": GET MIGRATION flags";
		break;
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
		if (call.dir == kGet) {
			EXPECT_EQ(state_name(get<std::uint32_t>(p, kHdr)), before ? state_name(*before) : "?")
				<< c.where() << ": GET MIG_DEVICE_STATE";
			EXPECT_EQ(get<std::int32_t>(p, kHdr + 4), -1) << c.where() << ": GET sets data_fd to -1";
		} else if (before) {
			std::uint32_t to = cond.target.value_or(static_cast<std::uint32_t>(State::Stop));
			bool want = to < kNumStates && starts_session(*before, static_cast<State>(to), c.devs->target.mig_flags);
			EXPECT_EQ(c.returned.valid(), want)
				<< c.where() << ": SET " << state_name(*before) << "->" << state_name(to) << " data_fd "
				<< get<std::int32_t>(p, kHdr + 4) << (want ? " (the arc starts a session)" : "");
		}
		break;
	case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
		EXPECT_GT(get<std::uint64_t>(p, kHdr), 0u) << c.where() << ": MIG_DATA_SIZE of a whole device";
		break;
	}
	return o;
}

/// VFIO_MIG_GET_PRECOPY_INFO.
Outcome run_precopy_info(Ctx &c, GuardPages &g)
{
	const CondDef &cond = *c.cond;
	std::size_t size = kPrecopyInfo;
	std::uint32_t argsz = static_cast<std::uint32_t>(size);
	if (cond.argsz == Argsz::TooSmall)
		argsz = static_cast<std::uint32_t>(size - 1);
	else if (cond.argsz == Argsz::Zero)
		argsz = 0;
	else if (cond.argsz == Argsz::Larger) {
		argsz = static_cast<std::uint32_t>(size + kExtra);
		size += kExtra;
	}
	Bytes image(size, kCanary);
	put<std::uint32_t>(image, 0, argsz);
	put<std::uint32_t>(image, 4, cond.info_flags);
	std::uint8_t *p = g.place(cond.place, image, 0);
	Outcome o = from_ret(::ioctl(call_fd(c).get(), VFIO_MIG_GET_PRECOPY_INFO, p));
	if (cond.place == Place::ReadOnly)
		g.restore();
	if (cond.verify == Verify::ReinitKept && c.session_live) {
		auto again = c.session.data.precopy_info();
		if (again.ok()) {
			EXPECT_EQ(again->flags, VFIO_PRECOPY_INFO_REINIT)
				<< c.where() << ": a query that failed (" << o.describe()
				<< ") consumed the pending REINIT: the next successful query must still report it";
		} else {
			ADD_FAILURE() << c.where() << ": query after the refused one: " << again.describe();
		}
	}
	if (o.err || cond.place != Place::Normal)
		return o;
	auto flags = get<std::uint32_t>(p, 4);
	if (cond.verify == Verify::FlagsEchoed) {
		EXPECT_EQ(flags, cond.info_flags) << c.where() << ": without the PRECOPY_INFOv2 opt-in flags are "
							"reserved and legacy drivers echo what was passed";
	}
	if (cond.verify == Verify::FlagsOutput) {
		EXPECT_EQ(flags & ~VFIO_PRECOPY_INFO_REINIT, 0u)
			<< c.where() << ": with the opt-in flags are an output; 0x" << std::hex << flags;
	}
	if (cond.verify == Verify::Canary) {
		for (std::size_t i = kPrecopyInfo; i < size; i++)
			EXPECT_EQ(p[i], kCanary) << c.where() << ": byte " << i << " past struct vfio_precopy_info written";
	}
	return o;
}

/// Reads the rest of a STOP_COPY stream and checks that what the cell
/// took plus the rest is one whole stream: a refused or partial read lost
/// nothing and duplicated nothing. Our stream is parsed; a foreign
/// driver's is opaque, so it is resumed on the destination instance, which
/// must accept it (RESUMING->STOP succeeds).
void check_saving_stream(Ctx &c)
{
	Bytes all = c.consumed;
	PumpOptions o;
	o.until = PumpUntil::Eof;
	o.capture = &all;
	auto r = pump(c.session.data, nullptr, o);
	ASSERT_TRUE(r.ok()) << c.where() << ": reading the rest of the stream: " << r.describe();
	if (const std::optional<Profile> &p = c.devs->param.profile) {
		StreamExpect e{static_cast<std::uint32_t>(*p), emu::mem_size(*c.dev)};
		ParsedStream parsed = parse_stream(all, e);
		EXPECT_TRUE(parsed.ok()) << c.where() << ": stream after the call: " << parsed.describe();
		return;
	}
	if (!c.devs->dst)
		return;
	Device &dst = *c.devs->dst;
	MigrationSession in = dst.set_state(State::Resuming);
	auto w = write_all(in.data, all);
	EXPECT_TRUE(w.ok()) << c.where() << ": writing the " << all.size()
			    << " bytes saved (the cell's read and the rest) to " << dst.label() << ": " << w.describe();
	auto st = dst.try_set_state(State::Stop);
	EXPECT_TRUE(st.ok()) << c.where() << ": RESUMING->STOP of " << dst.label()
			     << " after the stream the cell read: lost or repeated bytes? " << st.describe();
}

/// Writes the rest of the saved stream and leaves RESUMING: the device must
/// accept it, so the call neither lost nor duplicated stream bytes.
void check_resuming_stream(Ctx &c, std::size_t written)
{
	ByteSpan rest = ByteSpan(c.stream).subspan(std::min(written, c.stream.size()));
	auto w = write_all(c.session.data, rest);
	ASSERT_TRUE(w.ok()) << c.where() << ": writing the rest of the stream (" << rest.size()
			    << " bytes after " << written << "): " << w.describe();
	auto st = c.dev->try_set_state(State::Stop);
	EXPECT_TRUE(st.ok()) << c.where() << ": RESUMING->STOP after the whole stream: " << st.describe();
	c.session_live = false;
}

Outcome run_read(Ctx &c, GuardPages &g)
{
	const CondDef &cond = *c.cond;
	Bytes image(cond.len, 0);
	std::uint8_t *p = g.place(cond.place, image, 0);
	ssize_t n = ::read(call_fd(c).get(), p, cond.len);
	Outcome o = n < 0 ? Outcome::error(errno) : n == 0 ? Outcome::zero() : Outcome::success();
	if (cond.place == Place::ReadOnly)
		g.restore();
	if (n > 0 && p)
		c.consumed.assign(p, p + n);
	return o;
}

Outcome run_write(Ctx &c, GuardPages &g)
{
	const CondDef &cond = *c.cond;
	// The start of the saved stream, never past its end (data after END
	// is refused).
	Bytes image(c.stream.begin(), c.stream.begin() + static_cast<long>(std::min(cond.len, c.stream.size())));
	std::uint8_t *p = g.place(cond.place, image, 0);
	ssize_t n = ::write(call_fd(c).get(), p, image.size());
	Outcome o = n < 0 ? Outcome::error(errno) : n == 0 ? Outcome::zero() : Outcome::success();
	c.written = n > 0 ? static_cast<std::size_t>(n) : 0;
	return o;
}

Outcome run_poll(Ctx &c)
{
	pollfd pfd{call_fd(c).get(), static_cast<short>(c.call->role == Role::Saving ? POLLIN : POLLOUT), 0};
	int n = ::poll(&pfd, 1, 0);
	if (n < 0)
		return Outcome::error(errno);
	return Outcome::poll(static_cast<unsigned>(pfd.revents) & (POLLIN | POLLOUT | POLLERR | POLLHUP));
}

Outcome run_call(Ctx &c, std::optional<State> before)
{
	GuardPages g;
	std::uint8_t buf[16] = {};
	switch (c.call->kind) {
	case Kind::Feature:
		return run_feature(c, g, before);
	case Kind::PrecopyInfo:
		return run_precopy_info(c, g);
	case Kind::Read:
		return run_read(c, g);
	case Kind::Write:
		return run_write(c, g);
	case Kind::Poll:
		return run_poll(c);
	case Kind::Lseek:
		return from_ret(::lseek(call_fd(c).get(), 0, SEEK_SET));
	case Kind::Pread:
		return from_ret(::pread(call_fd(c).get(), buf, sizeof(buf), 0));
	case Kind::Pwrite:
		return from_ret(::pwrite(call_fd(c).get(), buf, sizeof(buf), 0));
	case Kind::Mmap: {
		int prot = c.call->role == Role::Saving ? PROT_READ : PROT_WRITE;
		void *m = ::mmap(nullptr, 4096, prot, MAP_SHARED, call_fd(c).get(), 0);
		if (m == MAP_FAILED)
			return Outcome::error(errno);
		munmap(m, 4096);
		return Outcome::success();
	}
	}
	return Outcome::error(ENOSYS);
}

/// A live session whose fd reports EPOLLHUP has been ended by the call.
void check_session_alive(const Ctx &c)
{
	if (!c.session_live || !c.session.has_data())
		return;
	pollfd pfd{c.session.data.fd().get(), POLLIN | POLLOUT, 0};
	ASSERT_GE(::poll(&pfd, 1, 0), 0);
	EXPECT_FALSE(pfd.revents & POLLHUP) << c.where() << ": the refused call ended the "
					    << c.session.data.describe();
}

} // namespace

const matrix::Registry &registry()
{
	static const matrix::Registry reg = [] {
		matrix::Registry r;
		for (const auto &[name, def] : conditions())
			r.conditions.insert(name);
		for (const CallDef &c : calls()) {
			auto &set = r.conditions_of[c.name];
			for (const std::string &cond : c.conditions) {
				if (!r.conditions.count(cond))
					throw Error(EINVAL, "ioctl matrix: call " + c.name + " lists unknown condition " + cond);
				set.insert(cond);
			}
		}
		return r;
	}();
	return reg;
}

void run(const Row &row, Devices &devs)
{
	Ctx c;
	c.row = &row;
	c.devs = &devs;
	c.call = &call_def(row.call);
	c.cond = &conditions().at(row.condition);
	if (!row.needs.holds(devs.target))
		GTEST_SKIP() << "row " << row.line << " requires " << row.needs.text() << "; "
			     << devs.param.name() << " " << row.needs.why_not(devs.target)
			     << (row.name != row.call + "__" + row.condition
					 ? " (the other rows of " + row.call + " x " + row.condition + " cover it)"
					 : std::string());
	if (row.expected.untested)
		GTEST_SKIP() << "row " << row.line << " is not exercised: " << row.rule;

	if (c.cond->life == Lifecycle::DeviceClosed || c.cond->fresh_device) {
		c.fresh = Fresh::make(devs.param);
		c.dev = &c.fresh->dev;
	} else if (c.call->v2_device || c.cond->v2_device) {
		c.dev = &devs.v2();
	} else {
		c.dev = devs.src;
	}
	if (auto why = enter_scene(c, resolve_scene(c)))
		GTEST_SKIP() << "row " << row.line << " (" << row.call << " x " << row.condition << ") on "
			     << foreign_label() << ": " << *why;
	apply_lifecycle(c);

	// Our module's choice, not the uAPI's: on another driver a different
	// outcome is a difference to report, never a failure.
	const bool difference_only = row.module_choice && devs.param.foreign();
	std::vector<std::string> differences;

	std::optional<State> before;
	if (!c.device_closed)
		before = c.dev->get_state();
	Outcome o = run_call(c, before);
	if (!row.expected.admits(o)) {
		std::string what = row.call + " x " + row.condition + " gave " + o.describe() + ", the table expects " +
				   row.expected.text() + " (rule: " + row.rule + ")" +
				   (before ? ", device was in " + state_name(*before) : std::string());
		if (difference_only)
			differences.push_back(what);
		else
			ADD_FAILURE() << c.where() << ": " << what;
	}

	switch (row.after.kind) {
	case matrix::After::Unchecked:
		break;
	case matrix::After::Same:
	case matrix::After::InState: {
		ASSERT_FALSE(c.device_closed) << c.where() << ": after=" << row.after.text()
					      << " but the condition closed the device; use -";
		State want = row.after.kind == matrix::After::Same ? *before : row.after.state;
		auto now = c.dev->try_get_state();
		ASSERT_TRUE(now.ok()) << c.where() << ": GET MIG_DEVICE_STATE after the call: " << now.describe();
		if (*now != want) {
			std::string what = "device state after " + row.call + " x " + row.condition + " (" + o.describe() +
					   ") is " + state_name(*now) + ", the table expects " + state_name(want) +
					   (row.after.kind == matrix::After::Same ? ": a refused call changed the state" : "");
			if (difference_only)
				differences.push_back(what);
			else
				ADD_FAILURE() << c.where() << ": " << what;
		}
		if (row.after.kind == matrix::After::Same)
			check_session_alive(c);
		break;
	}
	}

	// Last, as it moves the stream on (and RESUMING to STOP).
	if (c.cond->verify == Verify::StreamIntact && c.session_live && !c.device_closed) {
		if (c.call->kind == Kind::Read && c.dev->get_state() == State::StopCopy)
			check_saving_stream(c);
		else if (c.call->kind == Kind::Write)
			check_resuming_stream(c, c.written);
	}
	if (!differences.empty()) {
		std::string all;
		for (const std::string &d : differences)
			all += "\n  " + d;
		GTEST_SKIP() << "row " << row.line << " differs from vfio_mig_emu's choice (module choice, not a uAPI "
			     << "rule) on " << foreign_label() << ":" << all;
	}
}

} // namespace vfiomig::test::cells
