#include "runner.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "../guest/kmsg_listener.hpp"
#include "model.hpp"
#include "vfio_mig_emu.h"
#include "vfiomig/control.hpp"
#include "vfiomig/emu.hpp"
#include "vfiomig/mdev.hpp"
#include "vfiomig/stream.hpp"
#include "vfiomig/uapi.hpp"
#include "vfiomig/vfio.hpp"

namespace vfiomig::fuzz {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint32_t kFeatGet = VFIO_DEVICE_FEATURE_GET, kFeatSet = VFIO_DEVICE_FEATURE_SET,
			kFeatProbe = VFIO_DEVICE_FEATURE_PROBE;
// Held data fds per device; older ones are closed beyond this.
constexpr std::size_t kMaxHeldFds = 8;
// An address no buffer of ours lives at: the kernel must answer EFAULT.
void *bad_pointer() { return reinterpret_cast<void *>(std::uintptr_t{8}); }

struct Session {
	std::uint64_t id = 0;
	bool saving = true;
	bool alive = true;
	bool stop_copy = false;
	bool eof = false;
	bool v2 = false;
	bool broken = false; ///< resuming: a write was rejected
	std::optional<std::uint64_t> last_initial;
};

struct Held {
	Fd fd;
	std::shared_ptr<Session> s;
};

struct Armed {
	std::uint32_t id, site, effect;
	int err;
};

struct Dev {
	unsigned index = 0;
	Profile profile = Profile::Full;
	std::uint64_t flags = 0;
	std::optional<MdevInstance> mdev;
	std::optional<Device> dev;
	std::string uuid;
	// Exclusive: operations that change the state, the sessions or what
	// the model knows (SET, RESET, reopen, features, knobs, faults,
	// DEV_GET's counter check); shared: everything else.
	std::shared_mutex lock;
	// Data-fd operations of one device run one at a time, so a session's
	// initial_bytes and end-of-stream history stay ordered.
	std::mutex data;

	State state = State::Running;
	bool open = false;
	bool v2 = false;
	std::uint64_t mem_size = VFIO_MIG_EMU_DEFAULT_MEM_SIZE;
	std::shared_ptr<Session> saving, resuming;
	std::vector<Held> fds;
	std::vector<Armed> faults;
	std::uint64_t next_session = 1;

	// Expected counters since the last COUNTERS_RESET.
	control::Counters cnt;
	bool transitions_exact = true;
	std::uint64_t fault_failures = 0; ///< failures with an armed fault's errno

	std::string name() const { return "dev" + std::to_string(index) + "(" + profile_name(profile) + ")"; }
	std::size_t live_sessions() const { return (saving ? 1 : 0) + (resuming ? 1 : 0); }

	std::set<int> fault_errnos(std::uint32_t site, bool to_error_only = false) const
	{
		std::set<int> s;
		for (const Armed &f : faults)
			if (f.site == site && (f.effect == VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR ||
					       (!to_error_only && f.effect == VFIO_MIG_EMU_EFFECT_FAIL)))
				s.insert(f.err);
		return s;
	}
	bool has_fault(std::uint32_t site, std::uint32_t effect) const
	{
		return std::any_of(faults.begin(), faults.end(),
				   [&](const Armed &f) { return f.site == site && f.effect == effect; });
	}

	void end(std::shared_ptr<Session> &s)
	{
		if (s) {
			s->alive = false;
			s.reset();
		}
	}
	void end_all()
	{
		end(saving);
		end(resuming);
	}
	/// The model's side of one arc taken.
	void apply_arc(State from, State to)
	{
		switch (arc_effect(from, to)) {
		case ArcEffect::StartSaving:
			end(saving);
			// STOP -> STOP_COPY starts a session already in stop-copy.
			saving = std::make_shared<Session>(
				Session{next_session++, true, true, to == State::StopCopy, false, v2, false, {}});
			break;
		case ArcEffect::EnterStopCopy:
			if (saving)
				saving->stop_copy = true;
			break;
		case ArcEffect::EndSaving:
			end(saving);
			break;
		case ArcEffect::StartResuming:
			end(resuming);
			resuming = std::make_shared<Session>(Session{next_session++, false, true, false, false, false, false, {}});
			break;
		case ArcEffect::EndResuming:
			end(resuming);
			break;
		case ArcEffect::None:
			break;
		}
		state = to;
	}
	void hold(Fd fd, std::shared_ptr<Session> s)
	{
		if (fds.size() >= kMaxHeldFds)
			fds.erase(fds.begin());
		fds.push_back(Held{std::move(fd), std::move(s)});
	}
};

std::string err_str(int err)
{
	return err ? errno_name(err) : "ok";
}

struct Ctx;

/// Everything one run shares between its threads.
struct World {
	std::vector<std::unique_ptr<Dev>> devs;
	std::shared_mutex global; ///< exclusive: STATS (every model at once)
	control::Stats base;      ///< module counters before the first operation
	std::atomic<bool> stop{false};
	std::atomic<std::uint64_t> seq{0};
	std::atomic<std::size_t> executed{0};
	std::mutex finding_mu;
	std::optional<Finding> finding;
	std::mutex kmsg_mu;
	Fd kmsg;

	void report(Finding f)
	{
		std::lock_guard g(finding_mu);
		if (!finding)
			finding = std::move(f);
		stop = true;
	}
	/// The first bad kernel log line since the last call, if any.
	std::optional<std::string> kmsg_check()
	{
		std::unique_lock g(kmsg_mu, std::try_to_lock);
		if (!g.owns_lock() || !kmsg)
			return std::nullopt;
		char buf[8192];
		for (;;) {
			ssize_t n = ::read(kmsg.get(), buf, sizeof(buf));
			if (n < 0) {
				if (errno == EPIPE)
					continue;
				return std::nullopt;
			}
			std::string rec(buf, static_cast<std::size_t>(n));
			auto semi = rec.find(';');
			std::string line = semi == std::string::npos ? rec : rec.substr(semi + 1);
			if (const char *p = test::kmsg_bad_pattern(line)) {
				while (!line.empty() && line.back() == '\n')
					line.pop_back();
				return "[" + std::string(p) + "] " + line;
			}
		}
	}
};

/// One thread's view.
struct Ctx {
	World &w;
	unsigned thread;
	control::Client nl;
	std::vector<std::uint8_t> buf;
	std::string detail, result;
};

/// Thrown by the checks: unwinds to the thread loop with the finding.
struct Violation {
	std::string check, message;
};

[[noreturn]] void violate(std::string check, std::string message)
{
	throw Violation{std::move(check), std::move(message)};
}

void expect(const Expect &e, int err, const std::string &check, const std::string &what)
{
	if (!e.allows(err))
		violate(check, what + ": expected " + e.str() + ", got " + err_str(err));
}

// ---- raw device calls ---------------------------------------------------

// struct vfio_device_feature with room for any payload.
struct FeatureBuf {
	std::uint32_t argsz;
	std::uint32_t flags;
	alignas(8) std::uint8_t data[512];
};

int feature_call(const Dev &d, std::uint32_t flags, std::uint32_t argsz, FeatureBuf &fb)
{
	fb.argsz = argsz;
	fb.flags = flags;
	return ::ioctl(d.dev->fd().get(), VFIO_DEVICE_FEATURE, &fb) < 0 ? errno : 0;
}

/// GET MIG_DEVICE_STATE, or a violation.
State get_state(Dev &d, const char *when)
{
	FeatureBuf fb{};
	int err = feature_call(d, kFeatGet | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 8 + 8, fb);
	if (err)
		violate("get.failed", d.name() + " GET MIG_DEVICE_STATE " + when + ": " + errno_name(err));
	uapi::mig_state ms;
	std::memcpy(&ms, fb.data, sizeof(ms));
	if (ms.device_state >= kNumStates)
		violate("get.undefined", d.name() + " GET MIG_DEVICE_STATE " + when + " returned " +
						 std::to_string(ms.device_state));
	return static_cast<State>(ms.device_state);
}

void check_state(Dev &d, const char *when)
{
	State s = get_state(d, when);
	if (s != d.state)
		violate("get.state", d.name() + " GET MIG_DEVICE_STATE " + when + " is " + state_name(s) +
					     ", the model says " + state_name(d.state));
}

// ---- operations ----------------------------------------------------------

void op_set_state(Ctx &c, Dev &d, const Op &op)
{
	auto target = static_cast<std::uint32_t>(op.a);
	State cur = d.state;
	SetPlan plan = plan_set(cur, target, d.flags);
	c.detail = state_name(cur) + "->" + state_name(target) +
		   (plan.refused ? " (refused by the reference path)" : " path " + path_to_string(plan.path));
	FeatureBuf fb{};
	uapi::mig_state ms{target, -1};
	std::memcpy(fb.data, &ms, sizeof(ms));
	int err = feature_call(d, kFeatSet | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 8 + 8, fb);
	std::memcpy(&ms, fb.data, sizeof(ms));
	Fd data(err == 0 && ms.data_fd >= 0 ? ms.data_fd : -1);
	c.result = err_str(err) + (data ? " fd" : "");
	std::string what = d.name() + " SET " + state_name(cur) + "->" + state_name(target);

	if (plan.refused) {
		if (err == 0)
			violate("set.forbidden_accepted", what + " succeeded, but the kernel's path algorithm refuses it");
		expect(Expect::fail(EINVAL), err, "set.errno", what);
		d.cnt.transition_errors++;
		check_state(d, "after a refused SET");
		return;
	}
	if (err == 0) {
		if (plan.leaves_resuming)
			violate("set.incomplete_stream_accepted",
				what + " succeeded, but the resuming fd never received a complete stream");
		if (plan.returns_fd != (ms.data_fd >= 0))
			violate("set.data_fd", what + " returned data_fd " + std::to_string(ms.data_fd) +
						       (plan.returns_fd ? "; this arc starts a session" : "; no session starts"));
		State prev = cur;
		for (State s : plan.path) {
			d.apply_arc(prev, s);
			prev = s;
		}
		d.cnt.transitions += plan.path.size();
		if (data)
			d.hold(std::move(data), plan.path.back() == State::Resuming ? d.resuming : d.saving);
		check_state(d, "after a successful SET");
		return;
	}

	// A failed SET: faults armed at SET_STATE, or RESUMING -> STOP refusing
	// the incomplete stream.
	Expect allowed;
	allowed.or_errs(d.fault_errnos(VFIO_MIG_EMU_SITE_SET_STATE));
	if (plan.leaves_resuming)
		allowed.or_err(EINVAL);
	expect(allowed, err, "set.unexpected_failure", what + " (path " + path_to_string(plan.path) + ")");
	if (data)
		violate("set.data_fd", what + " failed but returned data_fd " + std::to_string(ms.data_fd));
	d.cnt.transition_errors++;
	if (allowed.errnos.count(err) && d.fault_errnos(VFIO_MIG_EMU_SITE_SET_STATE).count(err))
		d.fault_failures++;
	State seen = get_state(d, "after a failed SET");
	c.result += " now " + state_name(seen);
	if (seen == State::Error) {
		bool f2e = !d.fault_errnos(VFIO_MIG_EMU_SITE_SET_STATE, true).empty();
		if (!f2e && !plan.leaves_resuming)
			violate("set.failed_to_error", what + " failed with " + errno_name(err) +
							       " and left the device in ERROR; only a FAIL_TO_ERROR fault or RESUMING->STOP may");
		if (plan.path.size() > 1 && !(plan.leaves_resuming && !f2e))
			d.transitions_exact = false; // which arc failed is unknown
		d.end_all();
		d.state = State::Error;
		return;
	}
	if (plan.leaves_resuming && d.fault_errnos(VFIO_MIG_EMU_SITE_SET_STATE).empty())
		violate("set.resume_refused_not_error",
			what + " refused the stream but the device is in " + state_name(seen) + ", not ERROR");
	auto k = arcs_to(cur, plan.path, seen);
	if (!k)
		violate("set.failed_off_path", what + " failed and left the device in " + state_name(seen) +
						       ", which is neither the original state nor on the path " +
						       path_to_string(plan.path));
	State prev = cur;
	for (std::size_t i = 0; i < *k; i++) {
		d.apply_arc(prev, plan.path[i]);
		prev = plan.path[i];
	}
	d.cnt.transitions += *k;
}

void op_reset(Ctx &c, Dev &d)
{
	State cur = d.state;
	int err = ::ioctl(d.dev->fd().get(), VFIO_DEVICE_RESET) < 0 ? errno : 0;
	c.result = err_str(err);
	c.detail = "from " + state_name(cur);
	std::string what = d.name() + " VFIO_DEVICE_RESET in " + state_name(cur);
	if (err == 0) {
		d.end_all();
		d.state = State::Running;
		d.cnt.resets++;
		check_state(d, "after VFIO_DEVICE_RESET");
		return;
	}
	auto errs = d.fault_errnos(VFIO_MIG_EMU_SITE_RESET);
	expect(Expect{false, errs}, err, "reset.unexpected_failure", what);
	d.fault_failures++;
	State seen = get_state(d, "after a failed VFIO_DEVICE_RESET");
	c.result += " now " + state_name(seen);
	if (seen == cur)
		return;
	if (seen != State::Error || d.fault_errnos(VFIO_MIG_EMU_SITE_RESET, true).empty())
		violate("reset.failed_moved", what + " failed and moved the device to " + state_name(seen));
	d.end_all();
	d.state = State::Error;
}

Held *slot(Dev &d, std::uint64_t a)
{
	return d.fds.empty() ? nullptr : &d.fds[a % d.fds.size()];
}

std::string session_str(const Held &h)
{
	const Session &s = *h.s;
	std::string r = std::string(s.saving ? "saving" : "resuming") + " session " + std::to_string(s.id);
	if (!s.alive)
		return r + " (ended)";
	if (s.stop_copy)
		r += " (STOP_COPY)";
	if (s.broken)
		r += " (rejected)";
	return r;
}

void op_read(Ctx &c, Dev &d, const Op &op)
{
	Held *h = slot(d, op.a);
	if (!h) {
		c.result = "skipped: no data fd";
		return;
	}
	c.detail = session_str(*h);
	std::size_t size = op.b;
	if (c.buf.size() < size)
		c.buf.resize(size);
	void *p = op.c ? bad_pointer() : c.buf.data();
	ssize_t n = ::read(h->fd.get(), p, size);
	int err = n < 0 ? errno : 0;
	c.result = n >= 0 ? "ok " + std::to_string(n) + " bytes" : errno_name(err);
	std::string what = d.name() + " read(" + std::to_string(size) + (op.c ? ", bad pointer" : "") + ") on the " +
			   session_str(*h) + " in " + state_name(d.state);
	Session &s = *h->s;
	if (n > 0 && static_cast<std::size_t>(n) > size)
		violate("read.overrun", what + " returned " + std::to_string(n) + " bytes");
	if (!s.saving) {
		expect(Expect::fail(EBADF), err, "read.errno", what);
		return;
	}
	if (!s.alive) {
		Expect e = Expect::fail(ENODEV);
		expect(e, err, "read.stale_fd", what);
		return;
	}
	Expect e;
	e.or_errs(d.fault_errnos(VFIO_MIG_EMU_SITE_READ));
	if (size == 0)
		e.or_ok();
	if (s.stop_copy)
		e.or_ok(); // data, or 0 at the end of the stream
	else
		e.or_ok().or_err(ENOMSG);
	if (op.c)
		e.or_err(EFAULT);
	expect(e, err, "read.errno", what);
	if (err && d.fault_errnos(VFIO_MIG_EMU_SITE_READ).count(err))
		d.fault_failures++;
	if (n == 0 && size > 0 && !s.stop_copy && !op.c)
		violate("read.eof_in_precopy", what + " returned 0 (end of stream) in a precopy state; the uAPI says ENOMSG");
	if (n > 0 && s.eof)
		violate("read.data_after_eof", what + " returned " + std::to_string(n) + " bytes after end of stream");
	if (n == 0 && size > 0 && s.stop_copy && !op.c)
		s.eof = true;
	if (n > 0)
		d.cnt.bytes_saved += static_cast<std::uint64_t>(n);
}

void op_write(Ctx &c, Dev &d, const Op &op)
{
	Held *h = slot(d, op.a);
	if (!h) {
		c.result = "skipped: no data fd";
		return;
	}
	c.detail = session_str(*h);
	std::size_t size = op.b;
	Bytes data(size);
	Rng r(op.b * 31 + op.a);
	if (op.c % 3 == 0) {
		for (auto &b : data)
			b = static_cast<std::uint8_t>(r.next());
	} else if (op.c % 3 == 1) {
		Bytes hdr = StreamHeader::make(static_cast<std::uint32_t>(d.profile), d.mem_size).encode();
		for (std::size_t i = 0; i < size; i++)
			data[i] = i < hdr.size() ? hdr[i] : static_cast<std::uint8_t>(r.next());
	}
	const void *p = op.d ? bad_pointer() : data.data();
	ssize_t n = ::write(h->fd.get(), p, size);
	int err = n < 0 ? errno : 0;
	c.result = n >= 0 ? "ok " + std::to_string(n) + " bytes" : errno_name(err);
	std::string what = d.name() + " write(" + std::to_string(size) + (op.d ? ", bad pointer" : "") +
			   ") on the " + session_str(*h) + " in " + state_name(d.state);
	Session &s = *h->s;
	if (n > 0 && static_cast<std::size_t>(n) > size)
		violate("write.overrun", what + " returned " + std::to_string(n) + " bytes");
	if (s.saving) {
		expect(Expect::fail(EBADF), err, "write.errno", what);
		return;
	}
	if (!s.alive) {
		expect(Expect::fail(ENODEV), err, "write.stale_fd", what);
		return;
	}
	if (s.broken) {
		expect(Expect::fail(EINVAL), err, "write.after_reject", what);
		return;
	}
	Expect e = Expect::success().or_err(EINVAL);
	e.or_errs(d.fault_errnos(VFIO_MIG_EMU_SITE_WRITE));
	if (op.d)
		e.or_err(EFAULT);
	expect(e, err, "write.errno", what);
	if (n == 0 && size > 0)
		violate("write.zero", what + " accepted 0 bytes");
	if (err == EINVAL)
		s.broken = true;
	else if (err && err != EFAULT)
		d.fault_failures++;
	if (n > 0)
		d.cnt.bytes_loaded += static_cast<std::uint64_t>(n);
}

void op_poll(Ctx &c, Dev &d, const Op &op)
{
	Held *h = slot(d, op.a);
	if (!h) {
		c.result = "skipped: no data fd";
		return;
	}
	c.detail = session_str(*h);
	pollfd pfd{h->fd.get(), POLLIN | POLLOUT, 0};
	int ret = ::poll(&pfd, 1, 0);
	if (ret < 0)
		violate("poll.failed", d.name() + " poll: " + errno_name(errno));
	short rev = ret ? pfd.revents : 0;
	char hexbuf[16];
	std::snprintf(hexbuf, sizeof(hexbuf), "0x%x", static_cast<unsigned>(rev));
	c.result = std::string("revents ") + hexbuf;
	std::string what = d.name() + " poll on the " + session_str(*h) + " in " + state_name(d.state) +
			   " gave revents " + hexbuf;
	const Session &s = *h->s;
	if (!s.alive) {
		if ((rev & (POLLHUP | POLLERR)) != (POLLHUP | POLLERR))
			violate("poll.stale_fd", what + "; an ended session must give POLLHUP|POLLERR");
		return;
	}
	if (rev & POLLHUP)
		violate("poll.live_hup", what + "; the session is alive");
	if (s.saving) {
		if (rev & POLLERR)
			violate("poll.live_err", what + "; the session is alive");
		if (s.stop_copy && !(rev & POLLIN))
			violate("poll.stop_copy", what + "; in STOP_COPY the stream (or its end) is readable");
	} else {
		if (!(rev & POLLOUT))
			violate("poll.resuming", what + "; a live resuming fd is writable");
		if (!!(rev & POLLERR) != s.broken)
			violate("poll.resuming_err", what + (s.broken ? "; the stream was rejected: POLLERR expected"
								       : "; no write was rejected: no POLLERR expected"));
	}
}

void op_precopy(Ctx &c, Dev &d, const Op &op)
{
	Held *h = slot(d, op.a);
	if (!h) {
		c.result = "skipped: no data fd";
		return;
	}
	c.detail = session_str(*h);
	uapi::precopy_info info{};
	info.argsz = static_cast<std::uint32_t>(op.b);
	info.flags = static_cast<std::uint32_t>(op.c);
	void *p = op.d ? bad_pointer() : &info;
	int err = ::ioctl(h->fd.get(), VFIO_MIG_GET_PRECOPY_INFO, p) < 0 ? errno : 0;
	c.result = err_str(err);
	if (!err)
		c.result += " initial " + std::to_string(info.initial_bytes) + " dirty " + std::to_string(info.dirty_bytes) +
			    " flags " + std::to_string(info.flags);
	std::string what = d.name() + " VFIO_MIG_GET_PRECOPY_INFO(argsz " + std::to_string(op.b) +
			   (op.d ? ", bad pointer" : "") + ") on the " + session_str(*h) + " in " + state_name(d.state);
	Session &s = *h->s;
	if (!s.saving) {
		expect(Expect::fail(ENOTTY), err, "precopy.errno", what);
		return;
	}
	if (op.d) {
		expect(Expect::fail(EFAULT), err, "precopy.errno", what);
		return;
	}
	if (op.b < sizeof(uapi::precopy_info)) {
		expect(Expect::fail(EINVAL), err, "precopy.errno", what);
		return;
	}
	if (!s.alive || s.stop_copy) {
		if (!err)
			violate("precopy.outside_precopy", what + " succeeded; it is valid only in PRE_COPY and PRE_COPY_P2P");
		expect(Expect::fail(EINVAL), err, "precopy.errno", what);
		return;
	}
	d.cnt.precopy_queries++;
	Expect e = Expect::success();
	e.or_errs(d.fault_errnos(VFIO_MIG_EMU_SITE_PRECOPY_INFO));
	expect(e, err, "precopy.errno", what);
	if (err) {
		d.fault_failures++;
		return;
	}
	bool reinit = info.flags & VFIO_PRECOPY_INFO_REINIT;
	if (s.v2) {
		if (info.flags & ~VFIO_PRECOPY_INFO_REINIT)
			violate("precopy.v2_flags", what + " returned flags " + std::to_string(info.flags) +
							   "; with the v2 opt-in only REINIT may be set");
	} else {
		if (info.flags != static_cast<std::uint32_t>(op.c))
			violate("precopy.v1_flags", what + " returned flags " + std::to_string(info.flags) +
							   " for " + std::to_string(op.c) + "; without the opt-in they are echoed");
		reinit = false;
	}
	bool garbage = info.initial_bytes == UINT64_MAX && info.dirty_bytes == UINT64_MAX &&
		       d.has_fault(VFIO_MIG_EMU_SITE_PRECOPY_INFO, VFIO_MIG_EMU_EFFECT_GARBAGE_SIZE);
	if (garbage)
		return;
	if (!initial_bytes_ok(s.last_initial, info.initial_bytes, reinit))
		violate("precopy.initial_grew", what + ": initial_bytes grew from " + std::to_string(*s.last_initial) +
							" to " + std::to_string(info.initial_bytes) + " without REINIT");
	s.last_initial = info.initial_bytes;
}

void op_feature(Ctx &c, Dev &d, const Op &op)
{
	auto flags = static_cast<std::uint32_t>(op.a);
	// SET MIG_DEVICE_STATE goes through SET_STATE only (the model follows it there).
	if ((flags & 0xffff) == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE && (flags & kFeatSet) &&
	    !(flags & (kFeatProbe | kFeatGet)))
		flags = (flags & ~kFeatSet) | kFeatGet;
	auto argsz = static_cast<std::uint32_t>(op.b);
	FeatureExpect fe = expect_feature(flags, argsz, d.flags);
	FeatureBuf fb{};
	int err = feature_call(d, flags, argsz, fb);
	c.result = err_str(err);
	std::string what = d.name() + " VFIO_DEVICE_FEATURE(flags 0x" + [&] {
		char b[16];
		std::snprintf(b, sizeof(b), "%x", flags);
		return std::string(b);
	}() + ", argsz " + std::to_string(argsz) + ") in " + state_name(d.state);
	Expect e = fe.expect;
	auto ds_errs = d.fault_errnos(VFIO_MIG_EMU_SITE_DATA_SIZE);
	if (fe.data_size_site)
		e.or_errs(ds_errs);
	expect(e, err, "feature.errno", what);
	if (err) {
		if (fe.data_size_site && ds_errs.count(err)) {
			d.fault_failures++;
			State seen = get_state(d, "after a failed MIG_DATA_SIZE");
			if (seen != d.state) {
				if (seen != State::Error || d.fault_errnos(VFIO_MIG_EMU_SITE_DATA_SIZE, true).empty())
					violate("feature.data_size_moved", what + " failed and moved the device to " +
										   state_name(seen));
				d.end_all();
				d.state = State::Error;
			}
		}
		return;
	}
	std::uint64_t v;
	std::memcpy(&v, fb.data, sizeof(v));
	switch (fe.out) {
	case FeatureOut::MigrationFlags:
		c.result += " flags " + mig_flags_name(v);
		if (v != d.flags)
			violate("feature.migration_flags", what + " reported " + mig_flags_name(v) + "; the profile has " +
								   mig_flags_name(d.flags));
		break;
	case FeatureOut::DeviceState:
		c.result += " " + state_name(static_cast<std::uint32_t>(v));
		if (static_cast<std::uint32_t>(v) != static_cast<std::uint32_t>(d.state))
			violate("get.state", what + " reported " + state_name(static_cast<std::uint32_t>(v)) +
						     ", the model says " + state_name(d.state));
		break;
	case FeatureOut::DataSize:
		c.result += " " + std::to_string(v) + " bytes";
		break;
	case FeatureOut::None:
		break;
	}
	// The opt-in counts from the next query on, for the precopy session
	// already open too (the core's vfio_check_precopy_ioctl() reads it at
	// every query; the module does the same).
	if (fe.opts_in) {
		d.v2 = true;
		if (d.saving)
			d.saving->v2 = true;
	}
}

void op_region(Ctx &c, Dev &d, const Op &op, bool write)
{
	auto index = static_cast<std::uint32_t>(op.a);
	std::uint64_t off = op.b, size = op.c;
	auto value = static_cast<std::uint32_t>(op.d);
	if (c.buf.size() < size)
		c.buf.resize(size);
	if (write) {
		if (index == 0 && size == 4) {
			std::memcpy(c.buf.data(), &value, 4);
		} else {
			Rng r(op.d);
			for (std::size_t i = 0; i < size; i++)
				c.buf[i] = static_cast<std::uint8_t>(r.next());
		}
	}
	auto pos = static_cast<off_t>((std::uint64_t{index} << 40) + off);
	ssize_t n = write ? ::pwrite(d.dev->fd().get(), c.buf.data(), size, pos)
			  : ::pread(d.dev->fd().get(), c.buf.data(), size, pos);
	int err = n < 0 ? errno : 0;
	c.result = n >= 0 ? "ok " + std::to_string(n) + " bytes" : errno_name(err);
	std::string what = d.name() + (write ? " pwrite" : " pread") + "(region " + std::to_string(index) + " +" +
			   std::to_string(off) + ", " + std::to_string(size) + ") in " + state_name(d.state);
	Expect e = expect_region(index, off, size, write, state_writable(d.state), d.mem_size, value);
	expect(e, err, write ? "region.write" : "region.read", what);
	if (n >= 0 && static_cast<std::uint64_t>(n) != size)
		violate("region.short", what + " moved " + std::to_string(n) + " bytes");
	if (!write && !err && index == 0 && size == 4) {
		std::uint32_t v;
		std::memcpy(&v, c.buf.data(), 4);
		auto reg = [&](std::uint32_t want, const char *name) {
			if (v != want)
				violate("bar0.register", what + ": " + name + " reads " + std::to_string(v) + ", expected " +
								 std::to_string(want));
		};
		if (off == VFIO_MIG_EMU_REG_MAGIC)
			reg(VFIO_MIG_EMU_MAGIC, "MAGIC");
		else if (off == VFIO_MIG_EMU_REG_PROFILE)
			reg(static_cast<std::uint32_t>(d.profile), "PROFILE");
		else if (off == VFIO_MIG_EMU_REG_STATE)
			reg(static_cast<std::uint32_t>(d.state), "STATE");
		else if (off == VFIO_MIG_EMU_REG_MEM_SIZE_LO)
			reg(static_cast<std::uint32_t>(d.mem_size), "MEM_SIZE_LO");
		else if (off == VFIO_MIG_EMU_REG_DIRTY_DOORBELL || off == VFIO_MIG_EMU_REG_RECONFIG_DOORBELL)
			reg(0, "a doorbell");
	}
}

void op_close_data(Ctx &c, Dev &d, const Op &op)
{
	if (d.fds.empty()) {
		c.result = "skipped: no data fd";
		return;
	}
	std::size_t i = op.a % d.fds.size();
	c.detail = session_str(d.fds[i]);
	d.fds.erase(d.fds.begin() + static_cast<std::ptrdiff_t>(i));
	c.result = "ok";
}

void op_reopen(Ctx &c, Dev &d)
{
	// close_device ends the sessions (held fds go stale) and drops the
	// PRECOPY_INFOv2 opt-in; open_device resets the device to RUNNING.
	if (d.dev)
		d.dev.reset();
	d.open = false;
	d.end_all();
	d.v2 = false;
	try {
		d.dev.emplace(Device::open_sysfs(d.mdev->sysfs_path()));
	} catch (const Error &e) {
		c.result = errno_name(e.err());
		Expect allowed{false, d.fault_errnos(VFIO_MIG_EMU_SITE_OPEN)};
		expect(allowed, e.err(), "reopen.failed", d.name() + " reopening the device fd (" + e.what() + ")");
		d.fault_failures++;
		return;
	}
	d.open = true;
	d.state = State::Running;
	c.result = "ok";
	check_state(d, "after reopening the device");
}

void op_dev_get(Ctx &c, Dev &d)
{
	control::DeviceInfo info;
	try {
		info = c.nl.device(d.uuid);
	} catch (const Error &e) {
		violate("devget.failed", d.name() + " DEV_GET: " + e.what());
	}
	c.result = "state " + state_name(info.state) + " sessions " + std::to_string(info.sessions);
	std::string what = d.name() + " DEV_GET";
	if (info.state != static_cast<std::uint32_t>(d.state))
		violate("devget.state", what + " says " + state_name(info.state) + ", the model " + state_name(d.state));
	if (info.open != d.open)
		violate("devget.open", what + " says the device fd is " + (info.open ? "open" : "closed"));
	if (info.sessions != d.live_sessions())
		violate("devget.sessions", what + " counts " + std::to_string(info.sessions) + " open sessions, the model " +
						   std::to_string(d.live_sessions()));
	if (info.profile != static_cast<std::uint32_t>(d.profile) || info.mem_size != d.mem_size)
		violate("devget.identity", what + " reports profile " + std::to_string(info.profile) + " mem_size " +
						   std::to_string(info.mem_size));
	bool precopy = d.saving && !d.saving->stop_copy;
	if (info.precopy.initial_bytes.has_value() != precopy || info.precopy.dirty_bytes.has_value() != precopy)
		violate("devget.precopy", what + (precopy ? " lacks" : " carries") +
						  " INITIAL/DIRTY_BYTES; they belong to a session in PRE_COPY(_P2P) only");
	const control::Counters &k = info.counters;
	auto cnt = [&](const char *name, std::uint64_t got, std::uint64_t want) {
		if (got != want)
			violate("counters.balance", what + " counter " + name + " is " + std::to_string(got) +
							    ", the fuzzer did " + std::to_string(want));
	};
	cnt("BYTES_SAVED", k.bytes_saved, d.cnt.bytes_saved);
	cnt("BYTES_LOADED", k.bytes_loaded, d.cnt.bytes_loaded);
	cnt("PRECOPY_QUERIES", k.precopy_queries, d.cnt.precopy_queries);
	cnt("RESETS", k.resets, d.cnt.resets);
	cnt("TRANSITION_ERRORS", k.transition_errors, d.cnt.transition_errors);
	if (d.transitions_exact)
		cnt("TRANSITIONS", k.transitions, d.cnt.transitions);
	if (k.faults_hit < d.fault_failures)
		violate("counters.balance", what + " counter FAULTS_HIT is " + std::to_string(k.faults_hit) + ", but " +
						    std::to_string(d.fault_failures) + " calls failed with an armed fault's errno");
}

void op_stats(Ctx &c)
{
	control::Stats s;
	try {
		s = c.nl.stats();
	} catch (const Error &e) {
		violate("stats.failed", std::string("STATS_GET: ") + e.what());
	}
	std::uint32_t files = 0;
	for (auto &dp : c.w.devs) {
		Dev &d = *dp;
		files += static_cast<std::uint32_t>(d.live_sessions());
		for (const Held &h : d.fds)
			if (!h.s->alive)
				files++;
	}
	c.result = "devices " + std::to_string(s.devices) + " files " + std::to_string(s.files);
	if (s.devices != c.w.base.devices)
		violate("stats.devices", "STATS_GET counts " + std::to_string(s.devices) + " devices, expected " +
						 std::to_string(c.w.base.devices));
	if (s.files != c.w.base.files + files)
		violate("stats.files", "STATS_GET counts " + std::to_string(s.files) + " live migration files; the fuzzer holds " +
					       std::to_string(files) + " (live sessions + fds of ended ones) over a base of " +
					       std::to_string(c.w.base.files));
}

void op_knob(Ctx &c, Dev &d, const Op &op)
{
	KnobRequest k = knob_request(op);
	c.detail = k.str();
	control::Knobs req;
	switch (k.sel) {
	case kKnobArcDelay: req.arc_delays.push_back({k.from, k.to, static_cast<std::uint32_t>(k.value)}); break;
	case kKnobLoadNs: req.load_ns_per_kib = static_cast<std::uint32_t>(k.value); break;
	case kKnobLoadUs: req.load_us_per_resource = static_cast<std::uint32_t>(k.value); break;
	case kKnobMemSize: req.mem_size = k.value; break;
	case kKnobResourceBytes: req.resource_bytes = static_cast<std::uint32_t>(k.value); break;
	case kKnobDirtyRate: req.dirty_rate = static_cast<std::uint32_t>(k.value); break;
	default: req.reinit_policy = static_cast<control::ReinitPolicy>(k.value); break;
	}
	int err = 0;
	try {
		c.nl.set_knobs(d.uuid, req);
	} catch (const Error &e) {
		err = e.err();
	}
	c.result = err_str(err);
	expect(expect_knob(k, d.open), err, "knob.errno", d.name() + " KNOBS_SET " + k.str());
	if (!err && k.sel == kKnobMemSize)
		d.mem_size = k.value;
}

void op_fault_add(Ctx &c, Dev &d, const Op &op)
{
	FaultRequest f = fault_request(op);
	c.detail = f.str();
	control::Fault req;
	req.site = static_cast<control::Site>(f.site);
	req.effect = static_cast<control::Effect>(f.effect);
	if (f.trigger)
		req.trigger = static_cast<control::Trigger>(*f.trigger);
	req.n = f.n;
	req.probability_ppm = f.ppm;
	req.seed = f.seed;
	req.err = f.err;
	req.delay_us = f.delay_us;
	req.from = f.from;
	req.to = f.to;
	int err = 0;
	std::uint32_t id = 0;
	try {
		id = c.nl.add_fault(d.uuid, req);
	} catch (const Error &e) {
		err = e.err();
	}
	c.result = err ? errno_name(err) : "ok id " + std::to_string(id);
	expect(expect_fault_add(f, d.faults.size()), err, "fault.add", d.name() + " FAULT_ADD " + f.str());
	if (!err)
		d.faults.push_back(Armed{id, f.site, f.effect, f.err ? static_cast<int>(*f.err) : EIO});
}

void op_fault_clear(Ctx &c, Dev &d, const Op &op)
{
	std::optional<std::uint32_t> id;
	bool known = true;
	if (op.a) {
		std::size_t i = (op.a - 1) % (d.faults.size() + 1);
		known = i < d.faults.size();
		id = known ? d.faults[i].id : 0xfffffu;
	}
	c.detail = id ? "id " + std::to_string(*id) : "all";
	int err = 0;
	try {
		c.nl.clear_faults(d.uuid, id);
	} catch (const Error &e) {
		err = e.err();
	}
	c.result = err_str(err);
	expect(known ? Expect::success() : Expect::fail(ENOENT), err, "fault.clear", d.name() + " FAULT_CLEAR " + c.detail);
	if (!id)
		d.faults.clear();
	else
		std::erase_if(d.faults, [&](const Armed &a) { return a.id == *id; });
}

void op_workload(Ctx &c, Dev &d, const Op &op)
{
	auto action = static_cast<std::uint32_t>(op.a);
	auto count = static_cast<std::uint32_t>(op.b);
	int err = 0;
	try {
		c.nl.workload(d.uuid, static_cast<control::Workload>(action), count);
	} catch (const Error &e) {
		err = e.err();
	}
	c.result = err_str(err);
	bool writable = state_writable(d.state);
	Expect e;
	if (action == VFIO_MIG_EMU_WORKLOAD_DIRTY && writable)
		e = count > VFIO_MIG_EMU_MAX_DIRTY_STEPS ? Expect::fail(EINVAL).or_err(ERANGE) : Expect::success();
	else if (action == VFIO_MIG_EMU_WORKLOAD_RECONFIG && writable)
		e = Expect::success().or_err(ENOSPC);
	else if (action == VFIO_MIG_EMU_WORKLOAD_DIRTY || action == VFIO_MIG_EMU_WORKLOAD_RECONFIG)
		e = Expect::fail(EBUSY);
	else
		e = Expect::fail(EINVAL).or_err(ERANGE).or_err(EBUSY);
	// The attribute policy bounds COUNT before the device is asked.
	if (count > VFIO_MIG_EMU_MAX_DIRTY_STEPS)
		e.or_err(EINVAL).or_err(ERANGE);
	expect(e, err, "workload.errno",
	       d.name() + " WORKLOAD action " + std::to_string(action) + " count " + std::to_string(count) + " in " +
		       state_name(d.state));
}

void op_counters_reset(Ctx &c, Dev &d)
{
	int err = 0;
	try {
		c.nl.reset_counters(d.uuid);
	} catch (const Error &e) {
		err = e.err();
	}
	c.result = err_str(err);
	expect(Expect::success(), err, "counters.reset", d.name() + " COUNTERS_RESET");
	d.cnt = {};
	d.transitions_exact = true;
	d.fault_failures = 0;
}

void op_netlink_raw(Ctx &c, const Op &op)
{
	Rng r(op.b);
	auto cmd = static_cast<std::uint8_t>(op.a);
	bool read_only = cmd == VFIO_MIG_EMU_CMD_DEV_GET || cmd == VFIO_MIG_EMU_CMD_FAULT_GET ||
			 cmd == VFIO_MIG_EMU_CMD_STATS_GET;
	control::AttrBuf attrs;
	unsigned nattr = static_cast<unsigned>(r.below(5));
	std::string shape;
	for (unsigned i = 0; i < nattr; i++) {
		auto kind = r.below(10);
		if (kind < 3) {
			// A_UUID: one of ours (read-only commands only), a well-formed
			// unknown one, or not a uuid.
			std::string u;
			if (kind == 0 && read_only && !c.w.devs.empty())
				u = c.w.devs[r.below(c.w.devs.size())]->uuid;
			else if (kind == 1)
				u = "00000000-0000-4000-8000-" + std::to_string(100000000000 + r.below(899999999999));
			else
				u = std::string(r.below(40), static_cast<char>('a' + r.below(26)));
			attrs.str(VFIO_MIG_EMU_A_UUID, u);
			shape += " uuid(" + std::to_string(u.size()) + ")";
		} else if (kind < 5) {
			std::size_t at = attrs.begin_nest(static_cast<std::uint16_t>(r.below(32)));
			attrs.u32(static_cast<std::uint16_t>(r.below(20)), static_cast<std::uint32_t>(r.next()));
			attrs.end_nest(at);
			shape += " nest";
		} else {
			Bytes payload(r.below(40));
			for (auto &b : payload)
				b = static_cast<std::uint8_t>(r.next());
			auto type = static_cast<std::uint16_t>(r.below(32) | (r.chance(1, 8) ? 0x8000 : 0));
			attrs.raw(type, payload);
			shape += " attr" + std::to_string(type) + "(" + std::to_string(payload.size()) + ")";
		}
	}
	std::uint16_t nl_flags = (op.c & 1) ? 0x300 /* NLM_F_DUMP */ : 0;
	auto version = static_cast<std::uint8_t>((op.c >> 8) % 3);
	auto reserved = static_cast<std::uint16_t>((op.c >> 16) % 8 == 0 ? 1 + (op.c >> 24) % 100 : 0);
	c.detail = "cmd " + std::to_string(cmd) + (nl_flags ? " dump" : "") + " version " + std::to_string(version) +
		   (reserved ? " reserved " + std::to_string(reserved) : "") + shape;
	control::RawReply rep;
	try {
		rep = c.nl.raw_request(cmd, attrs.data(), nl_flags, version, reserved);
	} catch (const Error &e) {
		violate("netlink.socket", "raw request " + c.detail + ": " + e.what());
	}
	c.result = err_str(rep.err);
	static const Expect kAllowed = Expect::success()
					       .or_err(EINVAL)
					       .or_err(ENODEV)
					       .or_err(ERANGE)
					       .or_err(EOPNOTSUPP)
					       .or_err(ENOENT)
					       .or_err(EMSGSIZE)
					       .or_err(EPERM)
					       .or_err(E2BIG);
	expect(kAllowed, rep.err, "netlink.errno", "raw request " + c.detail);
}

// ---- dispatch ------------------------------------------------------------

enum class Lock { None, Shared, SharedData, Exclusive, Global };

Lock lock_of(OpKind k)
{
	switch (k) {
	case OpKind::GetState:
	case OpKind::RegionRead:
	case OpKind::RegionWrite:
	case OpKind::Workload:
		return Lock::Shared;
	case OpKind::Read:
	case OpKind::Write:
	case OpKind::Poll:
	case OpKind::PrecopyInfo:
	case OpKind::CloseData:
		return Lock::SharedData;
	case OpKind::Stats:
		return Lock::Global;
	case OpKind::NetlinkRaw:
		return Lock::None;
	default:
		return Lock::Exclusive;
	}
}

bool needs_open(OpKind k)
{
	switch (k) {
	case OpKind::SetState: case OpKind::GetState: case OpKind::Reset: case OpKind::Feature:
	case OpKind::RegionRead: case OpKind::RegionWrite:
		return true;
	default:
		return false;
	}
}

void execute(Ctx &c, const Op &op)
{
	Dev &d = *c.w.devs[op.dev % c.w.devs.size()];
	if (needs_open(op.kind) && !d.open) {
		c.result = "skipped: device fd closed";
		return;
	}
	switch (op.kind) {
	case OpKind::SetState: return op_set_state(c, d, op);
	case OpKind::GetState: {
		State s = get_state(d, "");
		c.result = state_name(s);
		if (s != d.state)
			violate("get.state", d.name() + " GET MIG_DEVICE_STATE is " + state_name(s) + ", the model says " +
						     state_name(d.state));
		return;
	}
	case OpKind::Reset: return op_reset(c, d);
	case OpKind::Read: return op_read(c, d, op);
	case OpKind::Write: return op_write(c, d, op);
	case OpKind::Poll: return op_poll(c, d, op);
	case OpKind::PrecopyInfo: return op_precopy(c, d, op);
	case OpKind::Feature: return op_feature(c, d, op);
	case OpKind::RegionRead: return op_region(c, d, op, false);
	case OpKind::RegionWrite: return op_region(c, d, op, true);
	case OpKind::CloseData: return op_close_data(c, d, op);
	case OpKind::Reopen: return op_reopen(c, d);
	case OpKind::DevGet: return op_dev_get(c, d);
	case OpKind::Stats: return op_stats(c);
	case OpKind::Knob: return op_knob(c, d, op);
	case OpKind::FaultAdd: return op_fault_add(c, d, op);
	case OpKind::FaultClear: return op_fault_clear(c, d, op);
	case OpKind::Workload: return op_workload(c, d, op);
	case OpKind::CountersReset: return op_counters_reset(c, d);
	case OpKind::NetlinkRaw: return op_netlink_raw(c, op);
	default: c.result = "unknown op"; return;
	}
}

void worker(World &w, unsigned thread, const std::vector<Op> &ops, bool record, std::vector<Step> *steps,
	    std::vector<std::size_t> *per_kind)
{
	std::optional<Ctx> ctx;
	try {
		ctx.emplace(Ctx{w, thread, control::Client::open(), {}, {}, {}});
	} catch (const Error &e) {
		w.report(Finding{thread, 0, "setup", std::string("netlink client: ") + e.what()});
		return;
	}
	Ctx &c = *ctx;
	for (std::size_t i = 0; i < ops.size() && !w.stop; i++) {
		const Op &op = ops[i];
		Dev &d = *w.devs[op.dev % w.devs.size()];
		c.detail.clear();
		c.result.clear();
		std::uint64_t seq = 0;
		std::optional<Violation> v;
		{
			Lock l = lock_of(op.kind);
			std::shared_lock<std::shared_mutex> gs(w.global, std::defer_lock);
			std::unique_lock<std::shared_mutex> gx(w.global, std::defer_lock);
			std::shared_lock<std::shared_mutex> ds(d.lock, std::defer_lock);
			std::unique_lock<std::shared_mutex> dx(d.lock, std::defer_lock);
			std::unique_lock<std::mutex> dd(d.data, std::defer_lock);
			if (l == Lock::Global) {
				gx.lock();
			} else {
				gs.lock();
				if (l == Lock::Exclusive)
					dx.lock();
				else if (l != Lock::None)
					ds.lock();
				if (l == Lock::SharedData)
					dd.lock();
			}
			seq = w.seq++;
			try {
				execute(c, op);
			} catch (const Violation &x) {
				v = x;
			} catch (const Error &e) {
				v = Violation{"exception", describe(op) + ": " + e.what()};
			}
		}
		if (!v) {
			if (auto bad = w.kmsg_check())
				v = Violation{"kernel.log", "kernel log after " + describe(op) + ": " + *bad};
		}
		if (record)
			steps->push_back(Step{thread, i, seq, op, c.detail, v ? c.result + " -> VIOLATION " + v->check : c.result});
		(*per_kind)[static_cast<unsigned>(op.kind)]++;
		w.executed++;
		if (v) {
			w.report(Finding{thread, i, v->check, v->message});
			return;
		}
	}
}

} // namespace

RunResult run(const std::vector<std::vector<Op>> &lists, const RunOptions &opt)
{
	RunResult res;
	res.per_kind.assign(kNumOpKinds, 0);
	World w;
	if (auto k = Fd::try_open("/dev/kmsg", O_RDONLY | O_NONBLOCK)) {
		w.kmsg = std::move(k.value());
		::lseek(w.kmsg.get(), 0, SEEK_END); // only what this run causes
	}
	for (unsigned i = 0; i < opt.devices; i++) {
		auto d = std::make_unique<Dev>();
		d->index = i;
		d->profile = kAllProfiles[i % std::size(kAllProfiles)];
		d->mdev.emplace(MdevInstance::create(d->profile));
		d->uuid = d->mdev->uuid();
		d->dev.emplace(Device::open_sysfs(d->mdev->sysfs_path()));
		d->open = true;
		d->flags = d->dev->migration_flags();
		// BAR2's region is mem_size rounded up to a power of two: the
		// registers give the memory size.
		d->mem_size = emu::mem_size(*d->dev);
		w.devs.push_back(std::move(d));
	}
	{
		control::Client nl = control::Client::open();
		w.base = nl.stats();
		// Counters start from zero whatever an earlier user of a
		// recycled uuid did (new instances start at zero anyway).
		for (auto &d : w.devs)
			nl.reset_counters(d->uuid);
	}

	std::vector<std::vector<Step>> steps(lists.size());
	std::vector<std::vector<std::size_t>> kinds(lists.size(), std::vector<std::size_t>(kNumOpKinds, 0));
	std::size_t total = 0;
	for (const auto &l : lists)
		total += l.size();
	auto start = Clock::now();
	{
		std::vector<std::jthread> threads;
		for (unsigned t = 0; t < lists.size(); t++)
			threads.emplace_back(worker, std::ref(w), t, std::cref(lists[t]), opt.record, &steps[t], &kinds[t]);
		if (opt.progress_seconds > 0) {
			auto next = start + std::chrono::duration<double>(opt.progress_seconds);
			std::size_t last_n = 0;
			auto last_t = start;
			while (w.executed < total && !w.stop) {
				std::this_thread::sleep_for(std::chrono::milliseconds(50));
				auto now = Clock::now();
				if (now >= next) {
					std::size_t n = w.executed;
					double dt = std::chrono::duration<double>(now - last_t).count();
					double el = std::chrono::duration<double>(now - start).count();
					std::printf("%s: %zu/%zu ops, %.0f ops/s now, %.0f ops/s overall, %.0f s\n",
						    opt.label.c_str(), n, total, (n - last_n) / dt, n / el, el);
					std::fflush(stdout);
					last_n = n;
					last_t = now;
					next = now + std::chrono::duration<double>(opt.progress_seconds);
				}
			}
		}
	}
	res.seconds = std::chrono::duration<double>(Clock::now() - start).count();
	res.executed = w.executed;
	res.finding = w.finding;
	for (unsigned t = 0; t < lists.size(); t++)
		for (unsigned k = 0; k < kNumOpKinds; k++)
			res.per_kind[k] += kinds[t][k];
	if (opt.record) {
		for (auto &s : steps)
			res.steps.insert(res.steps.end(), std::make_move_iterator(s.begin()), std::make_move_iterator(s.end()));
		std::sort(res.steps.begin(), res.steps.end(), [](const Step &a, const Step &b) { return a.seq < b.seq; });
	}
	// Teardown: data fds, then device fds, then the instances.
	for (auto &d : w.devs) {
		d->fds.clear();
		d->dev.reset();
	}
	for (auto &d : w.devs) {
		if (d->mdev) {
			Status st = d->mdev->remove();
			if (!st.ok() && !res.finding)
				res.finding = Finding{0, SIZE_MAX, "teardown", d->name() + ": removing the instance: " + st.describe()};
		}
	}
	// A problem the kernel logged while tearing down belongs to the run too.
	if (!res.finding)
		if (auto bad = w.kmsg_check())
			res.finding = Finding{0, SIZE_MAX, "kernel.log", "kernel log at teardown: " + *bad};
	return res;
}

} // namespace vfiomig::fuzz
