#include "nl_control.hpp"

#include <cstring>
#include <linux/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <poll.h>

#include "vfio_mig_emu.h"

namespace vfiomig::test {

namespace {

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
	default: return "CMD(" + std::to_string(cmd) + ")";
	}
}

/// libnl's own failures (-NLE_*) have no errno; they map to EPROTO with
/// libnl's text in the context, through the same Error type.
std::string nl_context(const std::string &what, int nle)
{
	return what + " [libnl: " + nl_geterror(nle) + "]";
}

struct Transaction {
	std::vector<NlAttrs> replies;
	int err = 0;
	std::string extack;
	bool done = false;
};

int on_valid(nl_msg *msg, void *arg)
{
	auto *t = static_cast<Transaction *>(arg);
	nlmsghdr *nlh = nlmsg_hdr(msg);
	auto *attrs = genlmsg_attrdata(static_cast<genlmsghdr *>(nlmsg_data(nlh)), 0);
	int len = genlmsg_attrlen(static_cast<genlmsghdr *>(nlmsg_data(nlh)), 0);
	t->replies.emplace_back(ByteSpan(reinterpret_cast<const std::uint8_t *>(attrs), static_cast<std::size_t>(len)));
	return NL_OK;
}

int on_finish(nl_msg *, void *arg)
{
	static_cast<Transaction *>(arg)->done = true;
	return NL_STOP;
}

int on_error(sockaddr_nl *, nlmsgerr *e, void *arg)
{
	auto *t = static_cast<Transaction *>(arg);
	t->err = -e->error;
	t->done = true;
	// Extended ack TLVs follow the (capped) original header.
	auto *nlh = reinterpret_cast<nlmsghdr *>(reinterpret_cast<char *>(e) - NLMSG_HDRLEN);
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		std::size_t off = sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - NLMSG_HDRLEN;
		std::size_t total = nlh->nlmsg_len - NLMSG_HDRLEN;
		if (off < total) {
			NlAttrs tlvs(ByteSpan(reinterpret_cast<const std::uint8_t *>(e) + off, total - off));
			if (auto m = tlvs.str(NLMSGERR_ATTR_MSG))
				t->extack = *m;
		}
	}
	return NL_STOP;
}

} // namespace

// --- attributes -------------------------------------------------------------

NlAttrs::NlAttrs(ByteSpan raw)
{
	std::size_t pos = 0;
	while (pos + NLA_HDRLEN <= raw.size()) {
		std::uint16_t len, type;
		std::memcpy(&len, raw.data() + pos, 2);
		std::memcpy(&type, raw.data() + pos + 2, 2);
		if (len < NLA_HDRLEN || pos + len > raw.size())
			break;
		attrs_.emplace(static_cast<std::uint16_t>(type & NLA_TYPE_MASK),
			       Bytes(raw.begin() + static_cast<std::ptrdiff_t>(pos + NLA_HDRLEN),
				     raw.begin() + static_cast<std::ptrdiff_t>(pos + len)));
		pos += NLA_ALIGN(len);
	}
}

std::optional<std::uint8_t> NlAttrs::u8(std::uint16_t type) const
{
	auto it = attrs_.find(type);
	if (it == attrs_.end() || it->second.empty())
		return std::nullopt;
	return it->second[0];
}

std::optional<std::uint32_t> NlAttrs::u32(std::uint16_t type) const
{
	auto it = attrs_.find(type);
	if (it == attrs_.end() || it->second.size() < 4)
		return std::nullopt;
	std::uint32_t v;
	std::memcpy(&v, it->second.data(), 4);
	return v;
}

std::optional<std::uint64_t> NlAttrs::u64(std::uint16_t type) const
{
	auto it = attrs_.find(type);
	if (it == attrs_.end() || it->second.size() < 8)
		return std::nullopt;
	std::uint64_t v;
	std::memcpy(&v, it->second.data(), 8);
	return v;
}

std::optional<std::string> NlAttrs::str(std::uint16_t type) const
{
	auto it = attrs_.find(type);
	if (it == attrs_.end())
		return std::nullopt;
	std::string s(it->second.begin(), it->second.end());
	if (auto nul = s.find('\0'); nul != std::string::npos)
		s.resize(nul);
	return s;
}

NlAttrs NlAttrs::nested(std::uint16_t type) const
{
	auto it = attrs_.find(type);
	return it == attrs_.end() ? NlAttrs() : NlAttrs(it->second);
}

std::vector<NlAttrs> NlAttrs::all_nested(std::uint16_t type) const
{
	std::vector<NlAttrs> out;
	auto [b, e] = attrs_.equal_range(type);
	for (auto it = b; it != e; ++it)
		out.emplace_back(it->second);
	return out;
}

NlBuilder &NlBuilder::put_u32(std::uint16_t type, std::uint32_t v)
{
	nla_put_u32(msg_, type, v);
	return *this;
}

NlBuilder &NlBuilder::put_u64(std::uint16_t type, std::uint64_t v)
{
	nla_put_u64(msg_, type, v);
	return *this;
}

NlBuilder &NlBuilder::put_str(std::uint16_t type, const std::string &v)
{
	nla_put_string(msg_, type, v.c_str());
	return *this;
}

NlBuilder &NlBuilder::nest(std::uint16_t type, const std::function<void(NlBuilder &)> &fill)
{
	nlattr *n = nla_nest_start(msg_, type | NLA_F_NESTED);
	fill(*this);
	nla_nest_end(msg_, n);
	return *this;
}

DevInfo DevInfo::from(const NlAttrs &a)
{
	DevInfo d;
	d.uuid = a.str(VFIO_MIG_EMU_A_UUID).value_or("");
	d.profile = a.u32(VFIO_MIG_EMU_A_PROFILE).value_or(~0u);
	d.state = a.u32(VFIO_MIG_EMU_A_STATE).value_or(~0u);
	d.mem_size = a.u64(VFIO_MIG_EMU_A_MEM_SIZE).value_or(0);
	d.device_open = a.u8(VFIO_MIG_EMU_A_DEVICE_OPEN).value_or(0) != 0;
	d.sessions = a.u32(VFIO_MIG_EMU_A_SESSIONS).value_or(0);
	d.digest = a.u32(VFIO_MIG_EMU_A_DIGEST).value_or(0);
	d.nr_resources = a.u32(VFIO_MIG_EMU_A_NR_RESOURCES).value_or(0);
	NlAttrs c = a.nested(VFIO_MIG_EMU_A_COUNTERS);
	for (std::uint16_t i = VFIO_MIG_EMU_CNT_TRANSITIONS; i <= VFIO_MIG_EMU_CNT_MAX; i++)
		if (auto v = c.u64(i))
			d.counters[i] = *v;
	NlAttrs p = a.nested(VFIO_MIG_EMU_A_PRECOPY);
	d.initial_bytes = p.u64(VFIO_MIG_EMU_PRECOPY_INITIAL_BYTES);
	d.dirty_bytes = p.u64(VFIO_MIG_EMU_PRECOPY_DIRTY_BYTES);
	d.stop_copy_bytes = p.u64(VFIO_MIG_EMU_PRECOPY_STOP_COPY_BYTES);
	d.knobs = a.nested(VFIO_MIG_EMU_A_KNOBS);
	return d;
}

// --- control ----------------------------------------------------------------

void NlControl::SockDeleter::operator()(nl_sock *s) const { nl_socket_free(s); }

NlControl::NlControl() = default;
NlControl::NlControl(NlControl &&) noexcept = default;
NlControl &NlControl::operator=(NlControl &&) noexcept = default;
NlControl::~NlControl() = default;

static Result<std::unique_ptr<nl_sock, void (*)(nl_sock *)>> connect_genl()
{
	using Ptr = std::unique_ptr<nl_sock, void (*)(nl_sock *)>;
	Ptr s(nl_socket_alloc(), nl_socket_free);
	if (!s)
		return Result<Ptr>::failure(ENOMEM, "nl_socket_alloc");
	if (int r = genl_connect(s.get()); r < 0)
		return Result<Ptr>::failure(EPROTO, nl_context("genl_connect", r));
	int one = 1;
	setsockopt(nl_socket_get_fd(s.get()), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl_socket_get_fd(s.get()), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	return s;
}

Result<NlControl> NlControl::open(bool events)
{
	auto s = connect_genl();
	if (!s)
		return Result<NlControl>::failure(s.err(), s.context());
	int family = genl_ctrl_resolve(s->get(), VFIO_MIG_EMU_NAME);
	if (family < 0)
		return Result<NlControl>::failure(ENOENT, nl_context("genl_ctrl_resolve(" VFIO_MIG_EMU_NAME ")", family));
	NlControl c;
	c.family_ = family;
	c.sock_.reset(s->release());
	if (events) {
		auto e = connect_genl();
		if (!e)
			return Result<NlControl>::failure(e.err(), e.context());
		int grp = genl_ctrl_resolve_grp(e->get(), VFIO_MIG_EMU_NAME, VFIO_MIG_EMU_MCGRP_EVENTS);
		if (grp < 0)
			return Result<NlControl>::failure(ENOENT, nl_context("genl_ctrl_resolve_grp(events)", grp));
		nl_socket_disable_seq_check(e->get());
		if (int r = nl_socket_add_membership(e->get(), grp); r < 0)
			return Result<NlControl>::failure(EPROTO, nl_context("nl_socket_add_membership(events)", r));
		nl_socket_set_nonblocking(e->get());
		c.events_.reset(e->release());
	}
	return c;
}

Result<std::vector<NlAttrs>> NlControl::request(std::uint8_t cmd, const std::function<void(NlBuilder &)> &fill, bool dump)
{
	using R = Result<std::vector<NlAttrs>>;
	std::string what = "genl " VFIO_MIG_EMU_NAME " " + cmd_name(cmd);
	std::unique_ptr<nl_msg, void (*)(nl_msg *)> msg(nlmsg_alloc(), nlmsg_free);
	if (!msg)
		return R::failure(ENOMEM, what + ": nlmsg_alloc");
	if (!genlmsg_put(msg.get(), NL_AUTO_PORT, NL_AUTO_SEQ, family_, 0, NLM_F_ACK | (dump ? NLM_F_DUMP : 0), cmd,
			 VFIO_MIG_EMU_GENL_VERSION))
		return R::failure(ENOMEM, what + ": genlmsg_put");
	NlBuilder b(msg.get());
	if (fill)
		fill(b);

	Transaction t;
	std::unique_ptr<nl_cb, void (*)(nl_cb *)> cb(nl_cb_alloc(NL_CB_DEFAULT), nl_cb_put);
	nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_valid, &t);
	nl_cb_set(cb.get(), NL_CB_FINISH, NL_CB_CUSTOM, on_finish, &t);
	nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, on_finish, &t);
	nl_cb_err(cb.get(), NL_CB_CUSTOM, on_error, &t);
	if (int r = nl_send_auto(sock_.get(), msg.get()); r < 0)
		return R::failure(EPROTO, nl_context(what + ": send", r));
	while (!t.done) {
		int r = nl_recvmsgs(sock_.get(), cb.get());
		if (r < 0 && !t.done)
			return R::failure(EPROTO, nl_context(what + ": receive", r));
	}
	if (t.err)
		return R::failure(t.err, what + (t.extack.empty() ? "" : " [extack: " + t.extack + "]"));
	return std::move(t.replies);
}

Result<DevInfo> NlControl::dev_get(const std::string &uuid)
{
	auto r = request(VFIO_MIG_EMU_CMD_DEV_GET, [&](NlBuilder &b) { b.put_str(VFIO_MIG_EMU_A_UUID, uuid); });
	if (!r)
		return Result<DevInfo>::failure(r.err(), r.context() + " for " + uuid);
	if (r->empty())
		return Result<DevInfo>::failure(EPROTO, "DEV_GET for " + uuid + ": no reply");
	return DevInfo::from(r->front());
}

Result<std::vector<DevInfo>> NlControl::dev_dump()
{
	auto r = request(VFIO_MIG_EMU_CMD_DEV_GET, {}, true);
	if (!r)
		return Result<std::vector<DevInfo>>::failure(r.err(), r.context());
	std::vector<DevInfo> out;
	for (const NlAttrs &a : *r)
		out.push_back(DevInfo::from(a));
	return out;
}

Result<std::uint32_t> NlControl::fault_add(const std::string &uuid, const FaultSpec &f)
{
	auto r = request(VFIO_MIG_EMU_CMD_FAULT_ADD, [&](NlBuilder &b) {
		b.put_str(VFIO_MIG_EMU_A_UUID, uuid);
		b.nest(VFIO_MIG_EMU_A_FAULT, [&](NlBuilder &n) {
			n.put_u32(VFIO_MIG_EMU_FAULT_SITE, f.site);
			n.put_u32(VFIO_MIG_EMU_FAULT_EFFECT, f.effect);
			if (f.from_state)
				n.put_u32(VFIO_MIG_EMU_FAULT_FROM_STATE, *f.from_state);
			if (f.to_state)
				n.put_u32(VFIO_MIG_EMU_FAULT_TO_STATE, *f.to_state);
			if (f.trigger)
				n.put_u32(VFIO_MIG_EMU_FAULT_TRIGGER, *f.trigger);
			if (f.n)
				n.put_u32(VFIO_MIG_EMU_FAULT_N, *f.n);
			if (f.probability_ppm)
				n.put_u32(VFIO_MIG_EMU_FAULT_PROBABILITY_PPM, *f.probability_ppm);
			if (f.seed)
				n.put_u64(VFIO_MIG_EMU_FAULT_SEED, *f.seed);
			if (f.err)
				n.put_u32(VFIO_MIG_EMU_FAULT_ERRNO, *f.err);
			if (f.delay_us)
				n.put_u32(VFIO_MIG_EMU_FAULT_DELAY_US, *f.delay_us);
		});
	});
	if (!r)
		return Result<std::uint32_t>::failure(r.err(), r.context() + " for " + uuid);
	if (r->empty() || !r->front().u32(VFIO_MIG_EMU_A_FAULT_ID))
		return Result<std::uint32_t>::failure(EPROTO, "FAULT_ADD for " + uuid + ": no A_FAULT_ID in the reply");
	return *r->front().u32(VFIO_MIG_EMU_A_FAULT_ID);
}

Status NlControl::fault_clear(const std::string &uuid, std::optional<std::uint32_t> id)
{
	auto r = request(VFIO_MIG_EMU_CMD_FAULT_CLEAR, [&](NlBuilder &b) {
		b.put_str(VFIO_MIG_EMU_A_UUID, uuid);
		if (id)
			b.put_u32(VFIO_MIG_EMU_A_FAULT_ID, *id);
	});
	if (!r)
		return Status::failure(r.err(), r.context() + " for " + uuid);
	return Unit{};
}

Status NlControl::workload(const std::string &uuid, std::uint32_t action, std::uint32_t count)
{
	auto r = request(VFIO_MIG_EMU_CMD_WORKLOAD, [&](NlBuilder &b) {
		b.put_str(VFIO_MIG_EMU_A_UUID, uuid);
		b.put_u32(VFIO_MIG_EMU_A_WORKLOAD_ACTION, action);
		b.put_u32(VFIO_MIG_EMU_A_WORKLOAD_COUNT, count);
	});
	if (!r)
		return Status::failure(r.err(), r.context() + " for " + uuid);
	return Unit{};
}

Status NlControl::counters_reset(const std::string &uuid)
{
	auto r = request(VFIO_MIG_EMU_CMD_COUNTERS_RESET, [&](NlBuilder &b) { b.put_str(VFIO_MIG_EMU_A_UUID, uuid); });
	if (!r)
		return Status::failure(r.err(), r.context() + " for " + uuid);
	return Unit{};
}

Result<NlAttrs> NlControl::knobs_set(const std::string &uuid, const std::function<void(NlBuilder &)> &fill)
{
	auto r = request(VFIO_MIG_EMU_CMD_KNOBS_SET, [&](NlBuilder &b) {
		b.put_str(VFIO_MIG_EMU_A_UUID, uuid);
		b.nest(VFIO_MIG_EMU_A_KNOBS, fill);
	});
	if (!r)
		return Result<NlAttrs>::failure(r.err(), r.context() + " for " + uuid);
	return r->empty() ? NlAttrs() : r->front().nested(VFIO_MIG_EMU_A_KNOBS);
}

namespace {
struct EventSink {
	std::vector<Event> *out;
};

int on_event(nl_msg *msg, void *arg)
{
	auto *sink = static_cast<EventSink *>(arg);
	nlmsghdr *nlh = nlmsg_hdr(msg);
	auto *g = static_cast<genlmsghdr *>(nlmsg_data(nlh));
	Event e;
	e.cmd = g->cmd;
	e.attrs = NlAttrs(ByteSpan(reinterpret_cast<const std::uint8_t *>(genlmsg_attrdata(g, 0)),
				   static_cast<std::size_t>(genlmsg_attrlen(g, 0))));
	e.uuid = e.attrs.str(VFIO_MIG_EMU_A_UUID).value_or("");
	e.seq = e.attrs.u64(VFIO_MIG_EMU_A_EVENT_SEQ).value_or(0);
	sink->out->push_back(std::move(e));
	return NL_OK;
}
} // namespace

std::vector<Event> NlControl::read_events(int timeout_ms)
{
	std::vector<Event> out;
	if (!events_)
		return out;
	struct pollfd pfd = {nl_socket_get_fd(events_.get()), POLLIN, 0};
	if (::poll(&pfd, 1, timeout_ms) <= 0)
		return out;
	EventSink sink{&out};
	std::unique_ptr<nl_cb, void (*)(nl_cb *)> cb(nl_cb_alloc(NL_CB_DEFAULT), nl_cb_put);
	nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_event, &sink);
	// Multicast messages carry no request sequence number.
	nl_cb_set(cb.get(), NL_CB_SEQ_CHECK, NL_CB_CUSTOM, [](nl_msg *, void *) { return static_cast<int>(NL_OK); },
		  nullptr);
	// Read until the socket is empty; an overrun (ENOBUFS) loses events but
	// the rest are still there.
	for (int errors = 0; errors < 100;) {
		int r = nl_recvmsgs(events_.get(), cb.get());
		if (r == -NLE_AGAIN)
			break;
		if (r < 0)
			errors++;
	}
	return out;
}

} // namespace vfiomig::test
