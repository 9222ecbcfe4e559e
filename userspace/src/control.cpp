#include "vfiomig/control.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <linux/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vfio_mig_emu.h"

static_assert(vfiomig::control::kMaxFaultErrno == VFIO_MIG_EMU_MAX_FAULT_ERRNO);

namespace vfiomig::control {

// --- names ------------------------------------------------------------------

namespace {

template <typename E>
struct Name {
	E value;
	const char *name;
};

constexpr Name<Site> kSiteNames[] = {
	{Site::SetState, "SET_STATE"}, {Site::Read, "READ"},        {Site::Write, "WRITE"},
	{Site::PrecopyInfo, "PRECOPY_INFO"}, {Site::DataSize, "DATA_SIZE"}, {Site::Reset, "RESET"},
	{Site::Open, "OPEN"},
};
constexpr Name<Trigger> kTriggerNames[] = {
	{Trigger::Nth, "NTH"}, {Trigger::EveryNth, "EVERY_NTH"}, {Trigger::FirstN, "FIRST_N"},
	{Trigger::Random, "RANDOM"},
};
constexpr Name<Effect> kEffectNames[] = {
	{Effect::Fail, "FAIL"},       {Effect::FailToError, "FAIL_TO_ERROR"}, {Effect::Delay, "DELAY"},
	{Effect::ShortIo, "SHORT_IO"}, {Effect::Corrupt, "CORRUPT"},           {Effect::GarbageSize, "GARBAGE_SIZE"},
};
constexpr Name<ReinitPolicy> kReinitNames[] = {{ReinitPolicy::Fold, "FOLD"}, {ReinitPolicy::Discard, "DISCARD"}};
constexpr Name<Workload> kWorkloadNames[] = {{Workload::Dirty, "DIRTY"}, {Workload::Reconfig, "RECONFIG"}};
constexpr Name<SessionKind> kSessionNames[] = {{SessionKind::Saving, "SAVING"}, {SessionKind::Resuming, "RESUMING"}};
constexpr Name<EventKind> kEventNames[] = {
	{EventKind::State, "STATE"},       {EventKind::Session, "SESSION"}, {EventKind::Fault, "FAULT"},
	{EventKind::Critical, "CRITICAL"}, {EventKind::Reset, "RESET"},
};
constexpr Name<std::uint32_t> kKnobNames[] = {
	{VFIO_MIG_EMU_KNOB_ARC_DELAY, "ARC_DELAY"},
	{VFIO_MIG_EMU_KNOB_LOAD_NS_PER_KIB, "LOAD_NS_PER_KIB"},
	{VFIO_MIG_EMU_KNOB_LOAD_US_PER_RESOURCE, "LOAD_US_PER_RESOURCE"},
	{VFIO_MIG_EMU_KNOB_MEM_SIZE, "MEM_SIZE"},
	{VFIO_MIG_EMU_KNOB_RESOURCE_BYTES, "RESOURCE_BYTES"},
	{VFIO_MIG_EMU_KNOB_DIRTY_RATE, "DIRTY_RATE"},
	{VFIO_MIG_EMU_KNOB_REINIT_POLICY, "REINIT_POLICY"},
	{VFIO_MIG_EMU_KNOB_REFUSE_PRECOPY_V2, "REFUSE_PRECOPY_V2"},
};

/// Upper case, '-' as '_'.
std::string canonical(std::string_view s)
{
	std::string out(s);
	for (char &c : out)
		c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
	return out;
}

template <typename E, std::size_t N>
std::string name_of(const Name<E> (&table)[N], E v, const char *what)
{
	for (const auto &n : table)
		if (n.value == v)
			return n.name;
	return std::string(what) + "(" + std::to_string(static_cast<std::uint32_t>(v)) + ")";
}

template <typename E, std::size_t N>
std::optional<E> parse_name(const Name<E> (&table)[N], std::string_view text)
{
	std::string c = canonical(text);
	for (const auto &n : table)
		if (c == n.name)
			return n.value;
	return std::nullopt;
}

} // namespace

std::string site_name(Site s) { return name_of(kSiteNames, s, "SITE"); }
std::string trigger_name(Trigger t) { return name_of(kTriggerNames, t, "TRIGGER"); }
std::string effect_name(Effect e) { return name_of(kEffectNames, e, "EFFECT"); }
std::string reinit_policy_name(ReinitPolicy p) { return name_of(kReinitNames, p, "POLICY"); }
std::string workload_name(Workload w) { return name_of(kWorkloadNames, w, "WORKLOAD"); }
std::string session_kind_name(SessionKind k) { return name_of(kSessionNames, k, "SESSION"); }
std::string event_kind_name(EventKind k) { return name_of(kEventNames, k, "EVENT"); }
std::string knob_name(std::uint32_t attr) { return name_of(kKnobNames, attr, "KNOB"); }
std::optional<Site> parse_site(std::string_view n) { return parse_name(kSiteNames, n); }
std::optional<Trigger> parse_trigger(std::string_view n) { return parse_name(kTriggerNames, n); }
std::optional<Effect> parse_effect(std::string_view n) { return parse_name(kEffectNames, n); }
std::optional<ReinitPolicy> parse_reinit_policy(std::string_view n) { return parse_name(kReinitNames, n); }
std::optional<Workload> parse_workload(std::string_view n) { return parse_name(kWorkloadNames, n); }
std::optional<EventKind> parse_event_kind(std::string_view n) { return parse_name(kEventNames, n); }
std::optional<std::uint32_t> parse_knob(std::string_view n) { return parse_name(kKnobNames, n); }

namespace {
constexpr const char *kQuirkNames[] = VFIO_MIG_EMU_QUIRK_NAMES;
static_assert(std::size(kQuirkNames) == VFIO_MIG_EMU_QUIRK_COUNT);
static_assert(kQuirkCount == VFIO_MIG_EMU_QUIRK_COUNT);
// What each quirk imitates (kmod/README.md has the long form).
constexpr const char *kQuirkText[] = {
	"PRECOPY_INFO flags still echoed after the PRECOPY_INFOv2 opt-in",
	"REINIT reported to a user that did not opt in",
	"initial_bytes grows (new initial data) without REINIT",
	"dirty_bytes not restarted on REINIT",
	"read() returns 0 instead of ENOMSG at the PRE_COPY temporary end",
	"read() returns ENOMSG instead of 0 at the STOP_COPY end of stream",
	"PRECOPY_INFO answered in STOP_COPY",
	"STOP_COPY -> PRE_COPY(_P2P) accepted",
	"RUNNING(_P2P) -> STOP_COPY goes through PRE_COPY(_P2P)",
	"a failed arc leaves the device in RUNNING, off the path",
	"the data fd of an ended session reads as EOF instead of failing",
	"PRE_COPY -> STOP_COPY returns a second fd on the same session",
	"RESUMING -> STOP accepts a stream without END",
	"MIG_DATA_SIZE reports half of what STOP_COPY then produces",
	"GET_STATE shows the interior steps of a combination SET",
	"P2P states accepted by a device without VFIO_MIGRATION_P2P",
	"VFIO_DEVICE_RESET keeps ERROR, STOP, RUNNING_P2P instead of RUNNING",
	"initial_bytes never decreases as the initial data is read",
	"the resuming fd swallows writes after the END record",
	"STOP -> RUNNING reports success but the device stays in STOP",
	"poll() never signals readiness in PRE_COPY",
	"SET_STATE leaves ERROR (as if from STOP)",
};
static_assert(std::size(kQuirkText) == VFIO_MIG_EMU_QUIRK_COUNT);
} // namespace

std::string quirk_name(unsigned bit)
{
	if (bit < std::size(kQuirkNames))
		return kQuirkNames[bit];
	return "quirk(" + std::to_string(bit) + ")";
}

std::string quirk_description(unsigned bit) { return bit < std::size(kQuirkText) ? kQuirkText[bit] : ""; }

std::optional<unsigned> parse_quirk(std::string_view name)
{
	std::string n;
	for (char c : name)
		n += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	for (unsigned i = 0; i < std::size(kQuirkNames); i++)
		if (n == kQuirkNames[i])
			return i;
	if (!n.empty() && std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
	    n.size() < 4 && std::stoul(n) < std::size(kQuirkNames))
		return static_cast<unsigned>(std::stoul(n));
	return std::nullopt;
}

std::uint64_t all_quirks() { return VFIO_MIG_EMU_QUIRKS_ALL; }

std::string describe_quirks(std::uint64_t mask)
{
	std::string s;
	for (unsigned i = 0; i < 64; i++) {
		if (!(mask & (std::uint64_t{1} << i)))
			continue;
		if (!s.empty())
			s += ',';
		s += quirk_name(i);
	}
	return s.empty() ? "none" : s;
}

bool effect_allowed(Site s, Effect e)
{
	switch (e) {
	case Effect::Fail:
	case Effect::Delay:
		return true;
	case Effect::FailToError:
		return s != Site::Open;
	case Effect::ShortIo:
	case Effect::Corrupt:
		return s == Site::Read || s == Site::Write;
	case Effect::GarbageSize:
		return s == Site::PrecopyInfo || s == Site::DataSize;
	}
	return false;
}

std::string arc_state_name(std::uint32_t s)
{
	return s == kAnyState ? "ANY" : state_name(s);
}

std::optional<std::uint32_t> parse_arc_state(std::string_view name)
{
	std::string c = canonical(name);
	if (c == "ANY" || c == "*")
		return kAnyState;
	auto s = parse_state(c);
	if (!s || *s == State::Error)
		return std::nullopt;
	return static_cast<std::uint32_t>(*s);
}

std::optional<int> parse_errno(std::string_view text)
{
	if (text.empty())
		return std::nullopt;
	if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
		if (text.size() > 6)
			return std::nullopt;
		int e = std::stoi(std::string(text));
		if (e < 1 || e > kMaxFaultErrno)
			return std::nullopt;
		return e;
	}
	std::string c = canonical(text);
	for (int e = 1; e <= kMaxFaultErrno; e++)
		if (errno_name(e) == c)
			return e;
	return std::nullopt;
}

// --- attributes -------------------------------------------------------------

namespace {

/// A parsed attribute area: payloads by type (type flags masked), in order.
/// Views into a buffer that must outlive it.
class Attrs {
public:
	Attrs() = default;
	explicit Attrs(ByteSpan raw)
	{
		std::size_t pos = 0;
		while (pos + NLA_HDRLEN <= raw.size()) {
			std::uint16_t len, type;
			std::memcpy(&len, raw.data() + pos, 2);
			std::memcpy(&type, raw.data() + pos + 2, 2);
			if (len < NLA_HDRLEN || pos + len > raw.size())
				break;
			list_.push_back({static_cast<std::uint16_t>(type & NLA_TYPE_MASK),
					 raw.subspan(pos + NLA_HDRLEN, len - NLA_HDRLEN)});
			pos += NLA_ALIGN(len);
		}
	}
	std::optional<ByteSpan> get(std::uint16_t type) const
	{
		for (const auto &a : list_)
			if (a.type == type)
				return a.data;
		return std::nullopt;
	}
	std::vector<ByteSpan> all(std::uint16_t type) const
	{
		std::vector<ByteSpan> out;
		for (const auto &a : list_)
			if (a.type == type)
				out.push_back(a.data);
		return out;
	}
	template <typename T>
	std::optional<T> num(std::uint16_t type) const
	{
		auto d = get(type);
		if (!d || d->size() < sizeof(T))
			return std::nullopt;
		T v;
		std::memcpy(&v, d->data(), sizeof(T));
		return v;
	}
	std::optional<std::uint8_t> u8(std::uint16_t t) const { return num<std::uint8_t>(t); }
	std::optional<std::uint32_t> u32(std::uint16_t t) const { return num<std::uint32_t>(t); }
	std::optional<std::uint64_t> u64(std::uint16_t t) const { return num<std::uint64_t>(t); }
	std::optional<std::string> str(std::uint16_t type) const
	{
		auto d = get(type);
		if (!d)
			return std::nullopt;
		std::string s(d->begin(), d->end());
		if (auto nul = s.find('\0'); nul != std::string::npos)
			s.resize(nul);
		return s;
	}
	Attrs nested(std::uint16_t type) const
	{
		auto d = get(type);
		return d ? Attrs(*d) : Attrs();
	}

private:
	struct Attr {
		std::uint16_t type;
		ByteSpan data;
	};
	std::vector<Attr> list_;
};

Fault decode_fault(const Attrs &a)
{
	Fault f;
	f.id = a.u32(VFIO_MIG_EMU_FAULT_ID).value_or(0);
	f.site = static_cast<Site>(a.u32(VFIO_MIG_EMU_FAULT_SITE).value_or(0));
	f.from = a.u32(VFIO_MIG_EMU_FAULT_FROM_STATE);
	f.to = a.u32(VFIO_MIG_EMU_FAULT_TO_STATE);
	if (auto t = a.u32(VFIO_MIG_EMU_FAULT_TRIGGER))
		f.trigger = static_cast<Trigger>(*t);
	f.n = a.u32(VFIO_MIG_EMU_FAULT_N);
	f.probability_ppm = a.u32(VFIO_MIG_EMU_FAULT_PROBABILITY_PPM);
	f.seed = a.u64(VFIO_MIG_EMU_FAULT_SEED);
	f.effect = static_cast<Effect>(a.u32(VFIO_MIG_EMU_FAULT_EFFECT).value_or(0));
	f.err = a.u32(VFIO_MIG_EMU_FAULT_ERRNO);
	f.delay_us = a.u32(VFIO_MIG_EMU_FAULT_DELAY_US);
	f.calls = a.u64(VFIO_MIG_EMU_FAULT_CALLS).value_or(0);
	f.hits = a.u64(VFIO_MIG_EMU_FAULT_HITS).value_or(0);
	return f;
}

Knobs decode_knobs(const Attrs &a)
{
	Knobs k;
	for (ByteSpan nest : a.all(VFIO_MIG_EMU_KNOB_ARC_DELAY)) {
		Attrs arc(nest);
		k.arc_delays.push_back({arc.u32(VFIO_MIG_EMU_A_FROM_STATE).value_or(kAnyState),
					arc.u32(VFIO_MIG_EMU_A_TO_STATE).value_or(kAnyState),
					arc.u32(VFIO_MIG_EMU_KNOB_DELAY_US).value_or(0)});
	}
	k.load_ns_per_kib = a.u32(VFIO_MIG_EMU_KNOB_LOAD_NS_PER_KIB);
	k.load_us_per_resource = a.u32(VFIO_MIG_EMU_KNOB_LOAD_US_PER_RESOURCE);
	k.mem_size = a.u64(VFIO_MIG_EMU_KNOB_MEM_SIZE);
	k.resource_bytes = a.u32(VFIO_MIG_EMU_KNOB_RESOURCE_BYTES);
	k.dirty_rate = a.u32(VFIO_MIG_EMU_KNOB_DIRTY_RATE);
	if (auto p = a.u32(VFIO_MIG_EMU_KNOB_REINIT_POLICY))
		k.reinit_policy = static_cast<ReinitPolicy>(*p);
	if (auto r = a.u32(VFIO_MIG_EMU_KNOB_REFUSE_PRECOPY_V2))
		k.refuse_precopy_v2 = *r != 0;
	return k;
}

DeviceInfo decode_device(const Attrs &a)
{
	DeviceInfo d;
	d.uuid = a.str(VFIO_MIG_EMU_A_UUID).value_or("");
	d.profile = a.u32(VFIO_MIG_EMU_A_PROFILE).value_or(~0u);
	d.state = a.u32(VFIO_MIG_EMU_A_STATE).value_or(~0u);
	d.mem_size = a.u64(VFIO_MIG_EMU_A_MEM_SIZE).value_or(0);
	d.open = a.u8(VFIO_MIG_EMU_A_DEVICE_OPEN).value_or(0) != 0;
	d.sessions = a.u32(VFIO_MIG_EMU_A_SESSIONS).value_or(0);
	d.digest = a.u32(VFIO_MIG_EMU_A_DIGEST);
	d.nr_resources = a.u32(VFIO_MIG_EMU_A_NR_RESOURCES).value_or(0);
	Attrs c = a.nested(VFIO_MIG_EMU_A_COUNTERS);
	d.counters.transitions = c.u64(VFIO_MIG_EMU_CNT_TRANSITIONS).value_or(0);
	d.counters.transition_errors = c.u64(VFIO_MIG_EMU_CNT_TRANSITION_ERRORS).value_or(0);
	d.counters.bytes_saved = c.u64(VFIO_MIG_EMU_CNT_BYTES_SAVED).value_or(0);
	d.counters.bytes_loaded = c.u64(VFIO_MIG_EMU_CNT_BYTES_LOADED).value_or(0);
	d.counters.precopy_queries = c.u64(VFIO_MIG_EMU_CNT_PRECOPY_QUERIES).value_or(0);
	d.counters.faults_hit = c.u64(VFIO_MIG_EMU_CNT_FAULTS_HIT).value_or(0);
	d.counters.resets = c.u64(VFIO_MIG_EMU_CNT_RESETS).value_or(0);
	Attrs p = a.nested(VFIO_MIG_EMU_A_PRECOPY);
	d.precopy.initial_bytes = p.u64(VFIO_MIG_EMU_PRECOPY_INITIAL_BYTES);
	d.precopy.dirty_bytes = p.u64(VFIO_MIG_EMU_PRECOPY_DIRTY_BYTES);
	d.precopy.stop_copy_bytes = p.u64(VFIO_MIG_EMU_PRECOPY_STOP_COPY_BYTES).value_or(0);
	d.knobs = decode_knobs(a.nested(VFIO_MIG_EMU_A_KNOBS));
	if (a.get(VFIO_MIG_EMU_A_KMEM)) {
		Attrs k = a.nested(VFIO_MIG_EMU_A_KMEM);
		d.kmem = Kmem{k.u64(VFIO_MIG_EMU_KMEM_PAGES).value_or(0), k.u64(VFIO_MIG_EMU_KMEM_BITMAPS).value_or(0),
			      k.u64(VFIO_MIG_EMU_KMEM_BUFFERS).value_or(0),
			      k.u64(VFIO_MIG_EMU_KMEM_RESOURCES).value_or(0),
			      k.u64(VFIO_MIG_EMU_KMEM_DIGEST).value_or(0)};
	}
	return d;
}

std::string cmd_name(std::uint8_t cmd)
{
	switch (cmd) {
	case VFIO_MIG_EMU_CMD_DEV_GET: return "DEV_GET";
	case VFIO_MIG_EMU_CMD_KNOBS_SET: return "KNOBS_SET";
	case VFIO_MIG_EMU_CMD_FAULT_ADD: return "FAULT_ADD";
	case VFIO_MIG_EMU_CMD_FAULT_GET: return "FAULT_GET";
	case VFIO_MIG_EMU_CMD_FAULT_CLEAR: return "FAULT_CLEAR";
	case VFIO_MIG_EMU_CMD_WORKLOAD: return "WORKLOAD";
	case VFIO_MIG_EMU_CMD_COUNTERS_RESET: return "COUNTERS_RESET";
	case VFIO_MIG_EMU_CMD_STATS_GET: return "STATS_GET";
	case VFIO_MIG_EMU_CMD_QUIRKS_SET: return "QUIRKS_SET";
	case VFIO_MIG_EMU_CMD_QUIRKS_GET: return "QUIRKS_GET";
	default: return "CMD(" + std::to_string(cmd) + ")";
	}
}

} // namespace

std::optional<Event> decode_event(std::uint8_t cmd, ByteSpan raw)
{
	if (cmd < VFIO_MIG_EMU_CMD_EVENT_STATE || cmd > VFIO_MIG_EMU_CMD_EVENT_RESET)
		return std::nullopt;
	Attrs a(raw);
	Event e;
	e.kind = static_cast<EventKind>(cmd);
	e.uuid = a.str(VFIO_MIG_EMU_A_UUID).value_or("");
	e.seq = a.u64(VFIO_MIG_EMU_A_EVENT_SEQ).value_or(0);
	e.timestamp_ns = a.u64(VFIO_MIG_EMU_A_TIMESTAMP_NS).value_or(0);
	e.from = a.u32(VFIO_MIG_EMU_A_FROM_STATE);
	e.to = a.u32(VFIO_MIG_EMU_A_TO_STATE);
	e.state = a.u32(VFIO_MIG_EMU_A_STATE).value_or(0);
	e.err = a.u32(VFIO_MIG_EMU_A_ERRNO).value_or(0);
	e.session = static_cast<SessionKind>(a.u32(VFIO_MIG_EMU_A_SESSION_KIND).value_or(0));
	e.session_open = a.u8(VFIO_MIG_EMU_A_SESSION_OPEN).value_or(0) != 0;
	e.fault_id = a.u32(VFIO_MIG_EMU_A_FAULT_ID).value_or(0);
	if (a.get(VFIO_MIG_EMU_A_FAULT))
		e.fault = decode_fault(a.nested(VFIO_MIG_EMU_A_FAULT));
	e.nr_resources = a.u32(VFIO_MIG_EMU_A_NR_RESOURCES).value_or(0);
	e.bytes = a.u64(VFIO_MIG_EMU_A_BYTES).value_or(0);
	return e;
}

std::string describe(const Fault &f, bool counts)
{
	std::string s = site_name(f.site);
	if (f.site == Site::SetState)
		s += "(" + arc_state_name(f.from.value_or(kAnyState)) + "->" + arc_state_name(f.to.value_or(kAnyState)) +
		     ")";
	Trigger t = f.trigger.value_or(Trigger::EveryNth);
	s += " " + trigger_name(t);
	if (t == Trigger::Random)
		s += " " + std::to_string(f.probability_ppm.value_or(0)) + "ppm seed " + std::to_string(f.seed.value_or(0));
	else
		s += " " + std::to_string(f.n.value_or(1));
	s += " " + effect_name(f.effect);
	if (f.effect == Effect::Fail || f.effect == Effect::FailToError)
		s += " " + errno_name(static_cast<int>(f.err.value_or(EIO)));
	if (f.delay_us)
		s += " " + std::to_string(*f.delay_us) + "us";
	if (counts)
		s += " (calls " + std::to_string(f.calls) + ", hits " + std::to_string(f.hits) + ")";
	return s;
}

std::string describe(const Event &e)
{
	std::string s = event_kind_name(e.kind);
	switch (e.kind) {
	case EventKind::State:
		s += " " + state_name(e.from.value_or(~0u)) + "->" + state_name(e.to.value_or(~0u));
		if (e.err)
			s += " failed " + errno_name(static_cast<int>(e.err)) + ", now " + state_name(e.state);
		else
			s += " ok";
		break;
	case EventKind::Session:
		s += " " + session_kind_name(e.session) + (e.session_open ? " opened" : " ended");
		break;
	case EventKind::Fault:
		s += " #" + std::to_string(e.fault_id);
		if (e.fault)
			s += " " + describe(*e.fault);
		break;
	case EventKind::Critical:
		s += " " + std::to_string(e.nr_resources) + " resources, +" + std::to_string(e.bytes) + " bytes";
		break;
	case EventKind::Reset:
		s += " from " + state_name(e.from.value_or(~0u));
		break;
	}
	return s;
}

// --- errors -----------------------------------------------------------------

ControlError::ControlError(int err, std::string call, std::string uuid, std::string extack, std::string attribute)
	: Error(err, call + (uuid.empty() ? "" : " on " + uuid)), call_(std::move(call)), uuid_(std::move(uuid)),
	  extack_(std::move(extack)), attribute_(std::move(attribute))
{
	full_ = Error::what();
	if (!extack_.empty())
		full_ += ": " + extack_;
	if (!attribute_.empty())
		full_ += " [" + attribute_ + "]";
}

void NlSockDeleter::operator()(nl_sock *sk) const noexcept { nl_socket_free(sk); }

// --- attribute building -----------------------------------------------------

AttrBuf &AttrBuf::raw(std::uint16_t type, ByteSpan payload)
{
	std::uint16_t len = static_cast<std::uint16_t>(NLA_HDRLEN + payload.size());
	std::uint8_t hdr[4];
	std::memcpy(hdr, &len, 2);
	std::memcpy(hdr + 2, &type, 2);
	buf_.insert(buf_.end(), hdr, hdr + 4);
	buf_.insert(buf_.end(), payload.begin(), payload.end());
	buf_.resize(NLA_ALIGN(buf_.size()), 0);
	return *this;
}

AttrBuf &AttrBuf::u8(std::uint16_t type, std::uint8_t v) { return raw(type, {&v, 1}); }

AttrBuf &AttrBuf::u32(std::uint16_t type, std::uint32_t v)
{
	std::uint8_t b[4];
	std::memcpy(b, &v, 4);
	return raw(type, b);
}

AttrBuf &AttrBuf::u64(std::uint16_t type, std::uint64_t v)
{
	std::uint8_t b[8];
	std::memcpy(b, &v, 8);
	return raw(type, b);
}

AttrBuf &AttrBuf::str(std::uint16_t type, std::string_view v)
{
	Bytes b(v.begin(), v.end());
	b.push_back(0);
	return raw(type, b);
}

std::size_t AttrBuf::begin_nest(std::uint16_t type)
{
	std::size_t at = buf_.size();
	raw(static_cast<std::uint16_t>(type | NLA_F_NESTED), {});
	return at;
}

void AttrBuf::end_nest(std::size_t at)
{
	auto len = static_cast<std::uint16_t>(buf_.size() - at);
	std::memcpy(buf_.data() + at, &len, 2);
}

namespace {

void put_fault(AttrBuf &b, const Fault &f)
{
	std::size_t n = b.begin_nest(VFIO_MIG_EMU_A_FAULT);
	b.u32(VFIO_MIG_EMU_FAULT_SITE, static_cast<std::uint32_t>(f.site));
	b.u32(VFIO_MIG_EMU_FAULT_EFFECT, static_cast<std::uint32_t>(f.effect));
	if (f.from)
		b.u32(VFIO_MIG_EMU_FAULT_FROM_STATE, *f.from);
	if (f.to)
		b.u32(VFIO_MIG_EMU_FAULT_TO_STATE, *f.to);
	if (f.trigger)
		b.u32(VFIO_MIG_EMU_FAULT_TRIGGER, static_cast<std::uint32_t>(*f.trigger));
	if (f.n)
		b.u32(VFIO_MIG_EMU_FAULT_N, *f.n);
	if (f.probability_ppm)
		b.u32(VFIO_MIG_EMU_FAULT_PROBABILITY_PPM, *f.probability_ppm);
	if (f.seed)
		b.u64(VFIO_MIG_EMU_FAULT_SEED, *f.seed);
	if (f.err)
		b.u32(VFIO_MIG_EMU_FAULT_ERRNO, *f.err);
	if (f.delay_us)
		b.u32(VFIO_MIG_EMU_FAULT_DELAY_US, *f.delay_us);
	b.end_nest(n);
}

void put_knobs(AttrBuf &b, const Knobs &k)
{
	std::size_t n = b.begin_nest(VFIO_MIG_EMU_A_KNOBS);
	for (const ArcDelay &a : k.arc_delays) {
		std::size_t arc = b.begin_nest(VFIO_MIG_EMU_KNOB_ARC_DELAY);
		if (a.from != kAnyState)
			b.u32(VFIO_MIG_EMU_A_FROM_STATE, a.from);
		if (a.to != kAnyState)
			b.u32(VFIO_MIG_EMU_A_TO_STATE, a.to);
		b.u32(VFIO_MIG_EMU_KNOB_DELAY_US, a.delay_us);
		b.end_nest(arc);
	}
	if (k.load_ns_per_kib)
		b.u32(VFIO_MIG_EMU_KNOB_LOAD_NS_PER_KIB, *k.load_ns_per_kib);
	if (k.load_us_per_resource)
		b.u32(VFIO_MIG_EMU_KNOB_LOAD_US_PER_RESOURCE, *k.load_us_per_resource);
	if (k.mem_size)
		b.u64(VFIO_MIG_EMU_KNOB_MEM_SIZE, *k.mem_size);
	if (k.resource_bytes)
		b.u32(VFIO_MIG_EMU_KNOB_RESOURCE_BYTES, *k.resource_bytes);
	if (k.dirty_rate)
		b.u32(VFIO_MIG_EMU_KNOB_DIRTY_RATE, *k.dirty_rate);
	if (k.reinit_policy)
		b.u32(VFIO_MIG_EMU_KNOB_REINIT_POLICY, static_cast<std::uint32_t>(*k.reinit_policy));
	if (k.refuse_precopy_v2)
		b.u32(VFIO_MIG_EMU_KNOB_REFUSE_PRECOPY_V2, *k.refuse_precopy_v2 ? 1 : 0);
	b.end_nest(n);
}

// --- transactions -----------------------------------------------------------

struct Transaction {
	int family = -1;
	std::uint32_t seq = 0;
	ByteSpan request; ///< the request's attributes, to name NLMSGERR_ATTR_OFFS
	RawReply reply;
	bool done = false;
};

/// Attribute names by the nest they appear in (uAPI enum suffixes).
enum class Space { Top, Knobs, Arc, Fault, Other };

std::string attr_name(Space sp, std::uint16_t type)
{
	static const char *const top[] = {"A_UNSPEC", "A_PAD", "A_UUID", "A_PROFILE", "A_STATE", "A_MEM_SIZE",
		"A_DEVICE_OPEN", "A_SESSIONS", "A_DIGEST", "A_NR_RESOURCES", "A_COUNTERS", "A_PRECOPY", "A_KNOBS",
		"A_FAULT", "A_FAULT_ID", "A_WORKLOAD_ACTION", "A_WORKLOAD_COUNT", "A_EVENT_SEQ", "A_TIMESTAMP_NS",
		"A_FROM_STATE", "A_TO_STATE", "A_ERRNO", "A_SESSION_KIND", "A_SESSION_OPEN", "A_BYTES", "A_STATS",
		"A_KMEM", "A_QUIRKS", "A_QUERY"};
	static const char *const fault[] = {"FAULT_UNSPEC", "FAULT_PAD", "FAULT_SITE", "FAULT_FROM_STATE",
		"FAULT_TO_STATE", "FAULT_TRIGGER", "FAULT_N", "FAULT_PROBABILITY_PPM", "FAULT_SEED", "FAULT_EFFECT",
		"FAULT_ERRNO", "FAULT_DELAY_US", "FAULT_CALLS", "FAULT_HITS", "FAULT_ID"};
	static_assert(std::size(top) == VFIO_MIG_EMU_A_MAX + 1);
	static_assert(std::size(fault) == VFIO_MIG_EMU_FAULT_MAX + 1);
	switch (sp) {
	case Space::Top:
		if (type < std::size(top))
			return top[type];
		break;
	case Space::Knobs:
		if (type == VFIO_MIG_EMU_KNOB_DELAY_US)
			return "KNOB_DELAY_US";
		if (parse_knob(knob_name(type)))
			return "KNOB_" + knob_name(type);
		break;
	case Space::Arc:
		if (type == VFIO_MIG_EMU_KNOB_DELAY_US)
			return "KNOB_DELAY_US";
		return attr_name(Space::Top, type);
	case Space::Fault:
		if (type < std::size(fault))
			return fault[type];
		break;
	case Space::Other:
		break;
	}
	return "attribute " + std::to_string(type);
}

Space inner_space(Space sp, std::uint16_t type)
{
	if (sp == Space::Top && type == VFIO_MIG_EMU_A_KNOBS)
		return Space::Knobs;
	if (sp == Space::Top && type == VFIO_MIG_EMU_A_FAULT)
		return Space::Fault;
	if (sp == Space::Knobs && type == VFIO_MIG_EMU_KNOB_ARC_DELAY)
		return Space::Arc;
	return Space::Other;
}

/// The path of the attribute starting at `offset` in `attrs` (which starts
/// at `base` in the message): "A_KNOBS/KNOB_DIRTY_RATE".
std::string attr_path(ByteSpan attrs, std::size_t base, std::size_t offset, Space sp)
{
	std::size_t pos = 0;
	while (pos + NLA_HDRLEN <= attrs.size()) {
		std::uint16_t len, type;
		std::memcpy(&len, attrs.data() + pos, 2);
		std::memcpy(&type, attrs.data() + pos + 2, 2);
		if (len < NLA_HDRLEN || pos + len > attrs.size())
			break;
		auto t = static_cast<std::uint16_t>(type & NLA_TYPE_MASK);
		std::size_t at = base + pos;
		if (at == offset)
			return attr_name(sp, t);
		if ((type & NLA_F_NESTED) && offset > at && offset < at + len)
			return attr_name(sp, t) + "/" +
			       attr_path(attrs.subspan(pos + NLA_HDRLEN, len - NLA_HDRLEN), at + NLA_HDRLEN, offset,
					 inner_space(sp, t));
		pos += NLA_ALIGN(len);
	}
	return "offset " + std::to_string(offset);
}

/// Extended-ack TLVs: the message, and what the kernel pointed at.
void parse_ack_tlvs(ByteSpan tlvs, Transaction *t)
{
	Attrs a(tlvs);
	if (auto m = a.str(NLMSGERR_ATTR_MSG))
		t->reply.extack = *m;
	std::string &where = t->reply.attribute;
	if (auto off = a.u32(NLMSGERR_ATTR_OFFS))
		where = attr_path(t->request, NLMSG_HDRLEN + GENL_HDRLEN, *off, Space::Top);
	if (auto miss = a.u32(NLMSGERR_ATTR_MISS_TYPE)) {
		Space sp = Space::Top;
		if (auto nest = a.u32(NLMSGERR_ATTR_MISS_NEST)) {
			std::string path = attr_path(t->request, NLMSG_HDRLEN + GENL_HDRLEN, *nest, Space::Top);
			sp = path.find("A_FAULT") == 0 ? Space::Fault : path.find("A_KNOBS") == 0 ? Space::Knobs : Space::Other;
		}
		where = "missing " + attr_name(sp, static_cast<std::uint16_t>(*miss));
	}
	if (a.get(NLMSGERR_ATTR_POLICY)) {
		Attrs pol = a.nested(NLMSGERR_ATTR_POLICY);
		auto lo = pol.u64(NL_POLICY_TYPE_ATTR_MIN_VALUE_U);
		auto hi = pol.u64(NL_POLICY_TYPE_ATTR_MAX_VALUE_U);
		if (lo && hi)
			where += (where.empty() ? "" : ", ") + std::string("valid ") + std::to_string(*lo) + ".." +
				 std::to_string(*hi);
		auto maxlen = pol.u32(NL_POLICY_TYPE_ATTR_MAX_LENGTH);
		if (maxlen)
			where += (where.empty() ? "" : ", ") + std::string("at most ") + std::to_string(*maxlen) + " bytes";
	}
}

int on_seq_check(nl_msg *msg, void *arg)
{
	auto *t = static_cast<Transaction *>(arg);
	return nlmsg_hdr(msg)->nlmsg_seq == t->seq ? NL_OK : NL_SKIP;
}

int on_valid(nl_msg *msg, void *arg)
{
	auto *t = static_cast<Transaction *>(arg);
	nlmsghdr *nlh = nlmsg_hdr(msg);
	if (nlh->nlmsg_type != t->family || nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
		return NL_SKIP;
	auto *g = static_cast<genlmsghdr *>(nlmsg_data(nlh));
	auto *p = reinterpret_cast<const std::uint8_t *>(genlmsg_attrdata(g, 0));
	t->reply.messages.emplace_back(p, p + genlmsg_attrlen(g, 0));
	return NL_OK;
}

int on_ack(nl_msg *, void *arg)
{
	static_cast<Transaction *>(arg)->done = true;
	return NL_STOP;
}

/// NLMSG_DONE of a dump: an int error, then extack TLVs when it failed.
int on_finish(nl_msg *msg, void *arg)
{
	auto *t = static_cast<Transaction *>(arg);
	nlmsghdr *nlh = nlmsg_hdr(msg);
	t->done = true;
	std::size_t len = nlh->nlmsg_len - NLMSG_HDRLEN;
	if (len >= sizeof(int)) {
		int err;
		std::memcpy(&err, nlmsg_data(nlh), sizeof(err));
		if (err < 0) {
			t->reply.err = -err;
			if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
				parse_ack_tlvs({static_cast<const std::uint8_t *>(nlmsg_data(nlh)) + sizeof(int),
						len - sizeof(int)},
					       t);
		}
	}
	return NL_STOP;
}

int on_error(sockaddr_nl *, nlmsgerr *e, void *arg)
{
	auto *t = static_cast<Transaction *>(arg);
	auto *nlh = reinterpret_cast<nlmsghdr *>(reinterpret_cast<char *>(e) - NLMSG_HDRLEN);
	if (nlh->nlmsg_seq != t->seq)
		return NL_SKIP;
	t->reply.err = -e->error;
	t->done = true;
	// Extended ack TLVs follow the original request (capped to its header
	// with NETLINK_CAP_ACK, or when the kernel chose so).
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		std::size_t off = sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - NLMSG_HDRLEN;
		std::size_t total = nlh->nlmsg_len - NLMSG_HDRLEN;
		if (off < total)
			parse_ack_tlvs({reinterpret_cast<const std::uint8_t *>(e) + off, total - off}, t);
	}
	return NL_STOP;
}

using MsgPtr = std::unique_ptr<nl_msg, void (*)(nl_msg *)>;
using CbPtr = std::unique_ptr<nl_cb, void (*)(nl_cb *)>;

NlSock connect(const char *what)
{
	NlSock sk(nl_socket_alloc());
	if (!sk)
		throw ControlError(ENOMEM, std::string(what) + ": nl_socket_alloc", "", "");
	if (int r = genl_connect(sk.get()); r < 0)
		throw ControlError(EPROTO, std::string(what) + ": genl_connect", "", nl_geterror(r));
	int one = 1;
	::setsockopt(nl_socket_get_fd(sk.get()), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	::setsockopt(nl_socket_get_fd(sk.get()), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	return sk;
}

int resolve_family(nl_sock *sk)
{
	int family = genl_ctrl_resolve(sk, VFIO_MIG_EMU_NAME);
	if (family < 0)
		throw ControlError(ENOENT, "genl_ctrl_resolve(" VFIO_MIG_EMU_NAME ")", "",
				   std::string(nl_geterror(family)) + " (is the module loaded?)");
	return family;
}

} // namespace

Client Client::open()
{
	Client c;
	c.sock_ = connect("control");
	c.family_ = resolve_family(c.sock_.get());
	c.group_ = genl_ctrl_resolve_grp(c.sock_.get(), VFIO_MIG_EMU_NAME, VFIO_MIG_EMU_MCGRP_EVENTS);
	if (c.group_ < 0)
		throw ControlError(ENOENT, "genl_ctrl_resolve_grp(" VFIO_MIG_EMU_MCGRP_EVENTS ")", "",
				   nl_geterror(c.group_));
	return c;
}

RawReply Client::transact(std::uint8_t cmd, ByteSpan attrs, std::uint16_t nl_flags, std::uint8_t version,
			  std::uint16_t reserved)
{
	MsgPtr msg(nlmsg_alloc(), nlmsg_free);
	if (!msg)
		throw ControlError(ENOMEM, cmd_name(cmd) + ": nlmsg_alloc", "", "");
	genlmsghdr g{cmd, version, reserved};
	if (!nlmsg_put(msg.get(), NL_AUTO_PORT, NL_AUTO_SEQ, family_, 0, NLM_F_REQUEST | NLM_F_ACK | nl_flags) ||
	    nlmsg_append(msg.get(), &g, sizeof(g), NLMSG_ALIGNTO) < 0 ||
	    (!attrs.empty() &&
	     nlmsg_append(msg.get(), const_cast<std::uint8_t *>(attrs.data()), attrs.size(), NLMSG_ALIGNTO) < 0))
		throw ControlError(EMSGSIZE, cmd_name(cmd) + ": building the request", "", "");

	Transaction t;
	t.family = family_;
	t.request = attrs;
	CbPtr cb(nl_cb_alloc(NL_CB_DEFAULT), nl_cb_put);
	if (!cb)
		throw ControlError(ENOMEM, cmd_name(cmd) + ": nl_cb_alloc", "", "");
	nl_cb_set(cb.get(), NL_CB_SEQ_CHECK, NL_CB_CUSTOM, on_seq_check, &t);
	nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_valid, &t);
	nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, on_ack, &t);
	nl_cb_set(cb.get(), NL_CB_FINISH, NL_CB_CUSTOM, on_finish, &t);
	nl_cb_err(cb.get(), NL_CB_CUSTOM, on_error, &t);
	if (int r = nl_send_auto(sock_.get(), msg.get()); r < 0)
		throw ControlError(EPROTO, cmd_name(cmd) + ": send", "", nl_geterror(r));
	t.seq = nlmsg_hdr(msg.get())->nlmsg_seq;
	while (!t.done) {
		int r = nl_recvmsgs(sock_.get(), cb.get());
		if (r < 0 && !t.done)
			throw ControlError(EPROTO, cmd_name(cmd) + ": receive", "", nl_geterror(r));
	}
	return std::move(t.reply);
}

RawReply Client::raw_request(std::uint8_t cmd, ByteSpan attrs, std::uint16_t nl_flags, std::uint8_t version,
			     std::uint16_t reserved)
{
	return transact(cmd, attrs, nl_flags, version, reserved);
}

std::vector<Bytes> Client::call(const char *name, const std::string &uuid, std::uint8_t cmd, ByteSpan attrs,
				bool dump)
{
	RawReply r = transact(cmd, attrs, dump ? NLM_F_DUMP : 0, VFIO_MIG_EMU_GENL_VERSION, 0);
	if (r.err)
		throw ControlError(r.err, name, uuid, r.extack, r.attribute);
	return std::move(r.messages);
}

namespace {

/// A_QUERY for `q`; nothing when it asks for nothing (older modules).
void put_query(AttrBuf &b, DeviceQuery q)
{
	std::uint32_t flags = q.digest ? VFIO_MIG_EMU_QUERY_DIGEST : 0;
	if (flags)
		b.u32(VFIO_MIG_EMU_A_QUERY, flags);
}

} // namespace

std::vector<DeviceInfo> Client::devices(DeviceQuery q)
{
	AttrBuf b;
	put_query(b, q);
	std::vector<DeviceInfo> out;
	for (const Bytes &m : call("DEV_GET(dump)", "", VFIO_MIG_EMU_CMD_DEV_GET, b.data(), true))
		out.push_back(decode_device(Attrs(m)));
	return out;
}

DeviceInfo Client::device(const std::string &uuid, DeviceQuery q)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, uuid);
	put_query(b, q);
	auto m = call("DEV_GET", uuid, VFIO_MIG_EMU_CMD_DEV_GET, b.data());
	if (m.empty())
		throw ControlError(EPROTO, "DEV_GET", uuid, "no reply");
	return decode_device(Attrs(m.front()));
}

Stats Client::stats()
{
	auto m = call("STATS_GET", "", VFIO_MIG_EMU_CMD_STATS_GET, {});
	if (m.empty())
		throw ControlError(EPROTO, "STATS_GET", "", "no reply");
	Attrs s = Attrs(m.front()).nested(VFIO_MIG_EMU_A_STATS);
	return {s.u32(VFIO_MIG_EMU_STAT_DEVICES).value_or(0), s.u32(VFIO_MIG_EMU_STAT_FILES).value_or(0),
		s.u32(VFIO_MIG_EMU_STAT_BUFFERS).value_or(0), s.u32(VFIO_MIG_EMU_STAT_PAGES).value_or(0)};
}

Knobs Client::set_knobs(const std::string &uuid, const Knobs &k)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, uuid);
	put_knobs(b, k);
	auto m = call("KNOBS_SET", uuid, VFIO_MIG_EMU_CMD_KNOBS_SET, b.data());
	if (m.empty())
		throw ControlError(EPROTO, "KNOBS_SET", uuid, "no reply");
	return decode_knobs(Attrs(m.front()).nested(VFIO_MIG_EMU_A_KNOBS));
}

std::uint32_t Client::add_fault(const std::string &uuid, const Fault &f)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, uuid);
	put_fault(b, f);
	auto m = call("FAULT_ADD", uuid, VFIO_MIG_EMU_CMD_FAULT_ADD, b.data());
	std::optional<std::uint32_t> id;
	if (!m.empty())
		id = Attrs(m.front()).u32(VFIO_MIG_EMU_A_FAULT_ID);
	if (!id)
		throw ControlError(EPROTO, "FAULT_ADD", uuid, "no A_FAULT_ID in the reply");
	return *id;
}

std::vector<Fault> Client::faults(const std::string &uuid)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, uuid);
	std::vector<Fault> out;
	for (const Bytes &m : call("FAULT_GET(dump)", uuid, VFIO_MIG_EMU_CMD_FAULT_GET, b.data(), true))
		out.push_back(decode_fault(Attrs(m).nested(VFIO_MIG_EMU_A_FAULT)));
	return out;
}

Fault Client::fault(const std::string &uuid, std::uint32_t id)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, uuid).u32(VFIO_MIG_EMU_A_FAULT_ID, id);
	auto m = call("FAULT_GET", uuid, VFIO_MIG_EMU_CMD_FAULT_GET, b.data());
	if (m.empty() || !Attrs(m.front()).get(VFIO_MIG_EMU_A_FAULT))
		throw ControlError(EPROTO, "FAULT_GET", uuid, "no A_FAULT in the reply");
	return decode_fault(Attrs(m.front()).nested(VFIO_MIG_EMU_A_FAULT));
}

void Client::clear_faults(const std::string &uuid, std::optional<std::uint32_t> id)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, uuid);
	if (id)
		b.u32(VFIO_MIG_EMU_A_FAULT_ID, *id);
	call("FAULT_CLEAR", uuid, VFIO_MIG_EMU_CMD_FAULT_CLEAR, b.data());
}

void Client::workload(const std::string &uuid, Workload action, std::uint32_t count)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, uuid)
		.u32(VFIO_MIG_EMU_A_WORKLOAD_ACTION, static_cast<std::uint32_t>(action))
		.u32(VFIO_MIG_EMU_A_WORKLOAD_COUNT, count);
	call("WORKLOAD", uuid, VFIO_MIG_EMU_CMD_WORKLOAD, b.data());
}

void Client::reset_counters(const std::string &uuid)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, uuid);
	call("COUNTERS_RESET", uuid, VFIO_MIG_EMU_CMD_COUNTERS_RESET, b.data());
}

std::uint64_t Client::set_quirks(std::uint64_t mask, const std::optional<std::string> &uuid)
{
	AttrBuf b;
	if (uuid)
		b.str(VFIO_MIG_EMU_A_UUID, *uuid);
	b.u64(VFIO_MIG_EMU_A_QUIRKS, mask);
	std::string who = uuid ? *uuid : "(module-global)";
	auto m = call("QUIRKS_SET", who, VFIO_MIG_EMU_CMD_QUIRKS_SET, b.data());
	std::optional<std::uint64_t> got;
	if (!m.empty())
		got = Attrs(m.front()).u64(VFIO_MIG_EMU_A_QUIRKS);
	if (!got)
		throw ControlError(EPROTO, "QUIRKS_SET", who, "no A_QUIRKS in the reply");
	return *got;
}

std::uint64_t Client::quirks(const std::optional<std::string> &uuid)
{
	AttrBuf b;
	if (uuid)
		b.str(VFIO_MIG_EMU_A_UUID, *uuid);
	std::string who = uuid ? *uuid : "(module-global)";
	auto m = call("QUIRKS_GET", who, VFIO_MIG_EMU_CMD_QUIRKS_GET, b.data());
	std::optional<std::uint64_t> got;
	if (!m.empty())
		got = Attrs(m.front()).u64(VFIO_MIG_EMU_A_QUIRKS);
	if (!got)
		throw ControlError(EPROTO, "QUIRKS_GET", who, "no A_QUIRKS in the reply");
	return *got;
}

// --- events -----------------------------------------------------------------

namespace {

struct EventSink {
	int family;
	std::deque<Event> *queue;
};

int on_event(nl_msg *msg, void *arg)
{
	auto *sink = static_cast<EventSink *>(arg);
	nlmsghdr *nlh = nlmsg_hdr(msg);
	if (nlh->nlmsg_type != sink->family || nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
		return NL_SKIP;
	auto *g = static_cast<genlmsghdr *>(nlmsg_data(nlh));
	auto *p = reinterpret_cast<const std::uint8_t *>(genlmsg_attrdata(g, 0));
	if (auto e = decode_event(g->cmd, ByteSpan(p, static_cast<std::size_t>(genlmsg_attrlen(g, 0)))))
		sink->queue->push_back(std::move(*e));
	return NL_OK;
}

} // namespace

EventSubscription::EventSubscription()
{
	sock_ = connect("events");
	nl_socket_disable_seq_check(sock_.get());
	family_ = resolve_family(sock_.get());
	int group = genl_ctrl_resolve_grp(sock_.get(), VFIO_MIG_EMU_NAME, VFIO_MIG_EMU_MCGRP_EVENTS);
	if (group < 0)
		throw ControlError(ENOENT, "genl_ctrl_resolve_grp(" VFIO_MIG_EMU_MCGRP_EVENTS ")", "", nl_geterror(group));
	// setsockopt rather than nl_socket_add_membership(): libnl folds the
	// errno into its own codes, and EPERM (no CAP_NET_ADMIN) must show.
	if (::setsockopt(nl_socket_get_fd(sock_.get()), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group,
			 sizeof(group)) != 0) {
		int err = errno;
		throw ControlError(err, "join the events group", "", std::strerror(err));
	}
	nl_socket_set_buffer_size(sock_.get(), 4 << 20, 0);
	nl_socket_set_nonblocking(sock_.get());
	wake_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (!wake_)
		throw_error(errno, "eventfd for the events subscription");
}

EventSubscription::~EventSubscription()
{
	stop();
	if (thread_.joinable())
		thread_.join();
}

void EventSubscription::stop()
{
	std::uint64_t one = 1;
	if (wake_)
		(void)!::write(wake_.get(), &one, sizeof(one));
}

bool EventSubscription::receive(std::chrono::milliseconds timeout)
{
	pollfd pfd[2] = {{nl_socket_get_fd(sock_.get()), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
	int n = ::poll(pfd, 2, static_cast<int>(timeout.count()));
	if (n < 0 && errno != EINTR)
		throw_error(errno, "poll(events socket)");
	if (n <= 0)
		return true;
	if (pfd[1].revents)
		return false;
	// POLLERR too: an overrun (ENOBUFS) is reported by the next recv.
	if (pfd[0].revents) {
		EventSink sink{family_, &queue_};
		CbPtr cb(nl_cb_alloc(NL_CB_DEFAULT), nl_cb_put);
		if (!cb)
			throw ControlError(ENOMEM, "events: nl_cb_alloc", "", "");
		nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_event, &sink);
		// A fresh cb does not inherit nl_socket_disable_seq_check():
		// multicast events carry no request sequence number.
		nl_cb_set(cb.get(), NL_CB_SEQ_CHECK, NL_CB_CUSTOM,
			  [](nl_msg *, void *) { return static_cast<int>(NL_OK); }, nullptr);
		int r = nl_recvmsgs(sock_.get(), cb.get());
		if (r == -NLE_NOMEM)
			overruns_++; // ENOBUFS: the kernel dropped events
		else if (r < 0 && r != -NLE_AGAIN)
			throw ControlError(EPROTO, "events: receive", "", nl_geterror(r));
	}
	return true;
}

std::optional<Event> EventSubscription::pop(std::chrono::milliseconds timeout)
{
	using Clock = std::chrono::steady_clock;
	auto deadline = Clock::now() + timeout;
	while (queue_.empty()) {
		auto left = timeout.count() < 0
				    ? std::chrono::milliseconds(-1)
				    : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
		if (timeout.count() >= 0 && left.count() < 0)
			left = std::chrono::milliseconds(0);
		if (!receive(left))
			return std::nullopt;
		if (timeout.count() >= 0 && Clock::now() >= deadline && queue_.empty())
			return std::nullopt;
	}
	Event e = std::move(queue_.front());
	queue_.pop_front();
	return e;
}

std::vector<Event> EventSubscription::drain(std::chrono::milliseconds quiet)
{
	std::vector<Event> out;
	while (auto e = pop(quiet))
		out.push_back(std::move(*e));
	return out;
}

void EventSubscription::start(std::function<void(const Event &)> cb)
{
	thread_ = std::thread([this, cb = std::move(cb)] {
		while (auto e = pop())
			cb(*e);
	});
}

} // namespace vfiomig::control
