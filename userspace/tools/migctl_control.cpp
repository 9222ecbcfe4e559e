#include "migctl_control.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <poll.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "vfio_mig_emu.h"
#include "vfiomig/control.hpp"
#include "vfiomig/mdev.hpp"
#include "vfiomig/vfio.hpp"

using namespace vfiomig;
using namespace vfiomig::control;
using nlohmann::json;

namespace migctl {

struct ControlCommands::Options {
	bool json = false;
	std::string uuid;
	std::string profile;
	std::string mem_size;
	std::string new_uuid;
	std::string state;
	double hold = 0;
	bool interactive = false;
	// knob
	std::vector<std::string> arc_delays;
	std::optional<std::uint32_t> load_ns_per_kib, load_us_per_resource, resource_bytes, dirty_rate;
	std::optional<std::string> knob_mem_size, reinit_policy;
	std::optional<bool> refuse_precopy_v2;
	// fault add
	std::string site, effect, from, to, err;
	std::optional<std::uint32_t> nth, every, first, ppm, delay_us;
	std::optional<std::uint64_t> seed;
	std::optional<std::uint32_t> fault_id;
	// workload
	std::string action;
	std::uint32_t count = 0;
	// quirk
	std::string quirk;
	std::string quirk_uuid;
	// watch
	std::optional<std::uint64_t> watch_count;
	double timeout = 0;
};

namespace {

std::string hex32(std::uint32_t v)
{
	char buf[16];
	std::snprintf(buf, sizeof(buf), "0x%08x", v);
	return buf;
}

/// hex32 of a digest, "-" when the reply has none (not asked for, or
/// refused: the digest needs CAP_NET_ADMIN).
std::string digest_text(const std::optional<std::uint32_t> &d)
{
	return d ? hex32(*d) : "-";
}

/// DEV_GET with the digest; without it when the caller may not read it.
DeviceInfo device_with_digest(Client &c, const std::string &uuid)
{
	try {
		return c.device(uuid, DeviceQuery{.digest = true});
	} catch (const ControlError &e) {
		if (e.err() != EPERM)
			throw;
	}
	return c.device(uuid);
}

/// The DEV_GET dump with digests; without them when refused (EPERM).
std::vector<DeviceInfo> devices_with_digest(Client &c)
{
	try {
		return c.devices(DeviceQuery{.digest = true});
	} catch (const ControlError &e) {
		if (e.err() != EPERM)
			throw;
	}
	return c.devices();
}

[[noreturn]] void usage_error(const std::string &msg) { throw CLI::ValidationError(msg); }

/// "4096", "64K", "1M", "2G".
std::uint64_t parse_size(const std::string &s)
{
	std::size_t pos = 0;
	unsigned long long v = 0;
	try {
		v = std::stoull(s, &pos, 0);
	} catch (const std::exception &) {
		usage_error("not a size: '" + s + "'");
	}
	std::string suffix = s.substr(pos);
	if (suffix == "K" || suffix == "k" || suffix == "KiB")
		v <<= 10;
	else if (suffix == "M" || suffix == "MiB")
		v <<= 20;
	else if (suffix == "G" || suffix == "GiB")
		v <<= 30;
	else if (!suffix.empty())
		usage_error("not a size: '" + s + "' (use a number with K, M or G)");
	return v;
}

std::uint32_t arc_state(const std::string &s)
{
	auto v = parse_arc_state(s);
	if (!v)
		usage_error("not a settable state or ANY: '" + s + "'");
	return *v;
}

std::string profile_of(std::uint32_t p)
{
	return p < VFIO_MIG_EMU_PROFILE_COUNT ? profile_name(static_cast<Profile>(p)) : std::to_string(p);
}

json knobs_json(const Knobs &k)
{
	json j;
	j["arc_delays"] = json::array();
	for (const ArcDelay &a : k.arc_delays)
		j["arc_delays"].push_back(
			{{"from", arc_state_name(a.from)}, {"to", arc_state_name(a.to)}, {"delay_us", a.delay_us}});
	j["load_ns_per_kib"] = k.load_ns_per_kib.value_or(0);
	j["load_us_per_resource"] = k.load_us_per_resource.value_or(0);
	j["mem_size"] = k.mem_size.value_or(0);
	j["resource_bytes"] = k.resource_bytes.value_or(0);
	j["dirty_rate"] = k.dirty_rate.value_or(0);
	j["reinit_policy"] = reinit_policy_name(k.reinit_policy.value_or(ReinitPolicy::Fold));
	j["refuse_precopy_v2"] = k.refuse_precopy_v2.value_or(false);
	return j;
}

void print_knobs(const Knobs &k)
{
	std::printf("knobs:\n");
	std::printf("  load_ns_per_kib       %u\n", k.load_ns_per_kib.value_or(0));
	std::printf("  load_us_per_resource  %u\n", k.load_us_per_resource.value_or(0));
	std::printf("  mem_size              %llu\n", static_cast<unsigned long long>(k.mem_size.value_or(0)));
	std::printf("  resource_bytes        %u\n", k.resource_bytes.value_or(0));
	std::printf("  dirty_rate            %u pages/s\n", k.dirty_rate.value_or(0));
	std::printf("  reinit_policy         %s\n",
		    reinit_policy_name(k.reinit_policy.value_or(ReinitPolicy::Fold)).c_str());
	std::printf("  refuse_precopy_v2     %s\n", k.refuse_precopy_v2.value_or(false) ? "yes" : "no");
	if (k.arc_delays.empty())
		std::printf("  arc delays            none\n");
	for (const ArcDelay &a : k.arc_delays)
		std::printf("  arc delay             %s->%s %u us\n", arc_state_name(a.from).c_str(),
			    arc_state_name(a.to).c_str(), a.delay_us);
}

json fault_json(const Fault &f)
{
	json j = {{"id", f.id},
		  {"site", site_name(f.site)},
		  {"trigger", trigger_name(f.trigger.value_or(Trigger::EveryNth))},
		  {"effect", effect_name(f.effect)},
		  {"calls", f.calls},
		  {"hits", f.hits}};
	if (f.from)
		j["from"] = arc_state_name(*f.from);
	if (f.to)
		j["to"] = arc_state_name(*f.to);
	if (f.n)
		j["n"] = *f.n;
	if (f.probability_ppm)
		j["probability_ppm"] = *f.probability_ppm;
	if (f.seed)
		j["seed"] = *f.seed;
	if (f.err)
		j["errno"] = errno_name(static_cast<int>(*f.err));
	if (f.delay_us)
		j["delay_us"] = *f.delay_us;
	return j;
}

json device_json(const DeviceInfo &d)
{
	json j = {{"uuid", d.uuid},
		  {"profile", profile_of(d.profile)},
		  {"state", state_name(d.state)},
		  {"mem_size", d.mem_size},
		  {"open", d.open},
		  {"sessions", d.sessions},
		  {"digest", d.digest ? json(hex32(*d.digest)) : json(nullptr)},
		  {"nr_resources", d.nr_resources}};
	const Counters &c = d.counters;
	j["counters"] = {{"transitions", c.transitions},   {"transition_errors", c.transition_errors},
			 {"bytes_saved", c.bytes_saved},   {"bytes_loaded", c.bytes_loaded},
			 {"precopy_queries", c.precopy_queries}, {"faults_hit", c.faults_hit},
			 {"resets", c.resets}};
	j["precopy"] = {{"stop_copy_bytes", d.precopy.stop_copy_bytes}};
	if (d.precopy.initial_bytes)
		j["precopy"]["initial_bytes"] = *d.precopy.initial_bytes;
	if (d.precopy.dirty_bytes)
		j["precopy"]["dirty_bytes"] = *d.precopy.dirty_bytes;
	j["knobs"] = knobs_json(d.knobs);
	return j;
}

json event_json(const Event &e)
{
	json j = {{"timestamp_ns", e.timestamp_ns}, {"uuid", e.uuid}, {"seq", e.seq}, {"event", event_kind_name(e.kind)}};
	switch (e.kind) {
	case EventKind::State:
		j["from"] = state_name(e.from.value_or(~0u));
		j["to"] = state_name(e.to.value_or(~0u));
		j["errno"] = e.err ? errno_name(static_cast<int>(e.err)) : "0";
		j["state"] = state_name(e.state);
		break;
	case EventKind::Session:
		j["session"] = session_kind_name(e.session);
		j["open"] = e.session_open;
		break;
	case EventKind::Fault:
		j["fault_id"] = e.fault_id;
		if (e.fault)
			j["fault"] = fault_json(*e.fault);
		if (e.from)
			j["from"] = state_name(*e.from);
		if (e.to)
			j["to"] = state_name(*e.to);
		break;
	case EventKind::Critical:
		j["nr_resources"] = e.nr_resources;
		j["bytes"] = e.bytes;
		break;
	case EventKind::Reset:
		j["from"] = state_name(e.from.value_or(~0u));
		break;
	}
	return j;
}

int cmd_list(const ControlCommands::Options &o)
{
	Client c = Client::open();
	auto devs = devices_with_digest(c);
	if (o.json) {
		json j = json::array();
		for (const auto &d : devs)
			j.push_back(device_json(d));
		std::cout << j.dump(2) << "\n";
		return 0;
	}
	if (devs.empty()) {
		std::printf("no vfio_mig_emu instances\n");
		return 0;
	}
	std::printf("%-36s  %-9s  %-12s  %-4s  %-8s  %-10s  %s\n", "UUID", "PROFILE", "STATE", "OPEN", "SESSIONS",
		    "DIGEST", "MEM");
	for (const auto &d : devs)
		std::printf("%-36s  %-9s  %-12s  %-4s  %-8u  %-10s  %llu\n", d.uuid.c_str(), profile_of(d.profile).c_str(),
			    state_name(d.state).c_str(), d.open ? "yes" : "no", d.sessions, digest_text(d.digest).c_str(),
			    static_cast<unsigned long long>(d.mem_size));
	return 0;
}

int cmd_show(const ControlCommands::Options &o)
{
	Client c = Client::open();
	DeviceInfo d = device_with_digest(c, o.uuid);
	auto faults = c.faults(o.uuid);
	if (o.json) {
		json j = device_json(d);
		j["faults"] = json::array();
		for (const Fault &f : faults)
			j["faults"].push_back(fault_json(f));
		std::cout << j.dump(2) << "\n";
		return 0;
	}
	std::printf("%s\n  profile %s, state %s, device fd %s, %u session(s)\n", d.uuid.c_str(),
		    profile_of(d.profile).c_str(), state_name(d.state).c_str(), d.open ? "open" : "closed", d.sessions);
	std::printf("  memory %llu bytes, %u resources, digest %s\n", static_cast<unsigned long long>(d.mem_size),
		    d.nr_resources, digest_text(d.digest).c_str());
	const Counters &n = d.counters;
	std::printf("counters:\n  transitions %llu, failed SETs %llu, resets %llu\n"
		    "  bytes saved %llu, loaded %llu, precopy queries %llu, faults hit %llu\n",
		    static_cast<unsigned long long>(n.transitions), static_cast<unsigned long long>(n.transition_errors),
		    static_cast<unsigned long long>(n.resets), static_cast<unsigned long long>(n.bytes_saved),
		    static_cast<unsigned long long>(n.bytes_loaded), static_cast<unsigned long long>(n.precopy_queries),
		    static_cast<unsigned long long>(n.faults_hit));
	std::printf("precopy:\n  stop-copy bytes %llu", static_cast<unsigned long long>(d.precopy.stop_copy_bytes));
	if (d.precopy.initial_bytes)
		std::printf(", initial %llu, dirty %llu", static_cast<unsigned long long>(*d.precopy.initial_bytes),
			    static_cast<unsigned long long>(d.precopy.dirty_bytes.value_or(0)));
	else
		std::printf(" (initial/dirty only in PRE_COPY)");
	std::printf("\n");
	print_knobs(d.knobs);
	std::printf("faults:%s\n", faults.empty() ? " none" : "");
	for (const Fault &f : faults)
		std::printf("  #%u %s\n", f.id, describe(f).c_str());
	return 0;
}

int cmd_stats(const ControlCommands::Options &o)
{
	Stats s = Client::open().stats();
	if (o.json)
		std::cout << json{{"devices", s.devices}, {"files", s.files}, {"buffers", s.buffers}, {"pages", s.pages}}.dump(2)
			  << "\n";
	else
		std::printf("live devices %u, files %u, buffers %u, pages %u\n", s.devices, s.files, s.buffers, s.pages);
	return 0;
}

int cmd_create(const ControlCommands::Options &o)
{
	auto prof = parse_profile(o.profile);
	if (!prof)
		usage_error("unknown profile '" + o.profile + "' (full, stopcopy, p2p, precopy)");
	std::string uuid = o.new_uuid;
	if (uuid.empty()) {
		uuid_t u;
		uuid_generate_random(u);
		char text[37];
		uuid_unparse_lower(u, text);
		uuid = text;
	}
	try_write_file(mdev_type_path(*prof) + "/create", uuid).value();
	if (!o.mem_size.empty()) {
		Knobs k;
		k.mem_size = parse_size(o.mem_size);
		try {
			Client::open().set_knobs(uuid, k);
		} catch (const Error &) {
			(void)try_write_file(mdev_device_path(uuid) + "/remove", "1");
			throw;
		}
	}
	std::printf("%s\n", uuid.c_str());
	return 0;
}

int cmd_remove(const ControlCommands::Options &o)
{
	try_write_file(mdev_device_path(o.uuid) + "/remove", "1").value();
	return 0;
}

volatile std::sig_atomic_t g_interrupted = 0;
EventSubscription *g_watch = nullptr;

void on_signal(int)
{
	g_interrupted = 1;
	if (g_watch)
		g_watch->stop();
}

void catch_signals()
{
	struct sigaction sa = {};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);
}

/// One SET on `dev`, printed; returns false on failure.
bool set_one(Device &dev, const std::string &text)
{
	auto s = parse_state(text);
	if (!s) {
		std::fprintf(stderr, "vfio-migctl: not a state: '%s'\n", text.c_str());
		return false;
	}
	State from = dev.get_state();
	auto r = dev.try_set_state(*s);
	if (!r) {
		auto now = dev.try_get_state();
		std::fprintf(stderr, "vfio-migctl: %s (device now %s)\n", r.describe().c_str(),
			     now ? state_name(*now).c_str() : "unknown");
		return false;
	}
	std::printf("%s -> %s%s\n", state_name(from).c_str(), state_name(*s).c_str(),
		    r->has_data() ? " (data fd open; it ends when this process ends or the state leaves the session)"
				  : "");
	std::fflush(stdout);
	return true;
}

int cmd_state(const ControlCommands::Options &o)
{
	if (o.state.empty() && !o.interactive) {
		DeviceInfo d = Client::open().device(o.uuid);
		std::printf("%s\n", state_name(d.state).c_str());
		return 0;
	}
	// Setting needs the device fd: only one process can hold it (EBUSY
	// otherwise), and closing it ends every session (the next open resets
	// the device). The state lasts while this process holds the fd.
	std::optional<Device> held;
	try {
		held.emplace(Device::open_sysfs(mdev_device_path(o.uuid)));
	} catch (const Error &e) {
		if (e.err() == EBUSY)
			throw Error(EBUSY, std::string(e.context()) + " [another process holds the device; its state "
									"can only be changed there, but knob, fault and "
									"workload reach it]");
		throw;
	}
	Device &dev = *held;
	std::vector<MigrationSession> sessions; // data fds stay open while held
	int rc = 0;
	if (!o.state.empty())
		rc = set_one(dev, o.state) ? 0 : 1;
	catch_signals();
	if (o.interactive) {
		std::printf("holding %s; type a state per line (RUNNING, STOP, STOP_COPY, ...), 'reset', or 'quit'\n",
			    o.uuid.c_str());
		std::string line;
		while (!g_interrupted && std::printf("%s> ", state_name(dev.get_state()).c_str()) >= 0 &&
		       std::fflush(stdout) == 0 && std::getline(std::cin, line)) {
			if (line.empty())
				continue;
			if (line == "quit" || line == "q")
				break;
			if (line == "reset") {
				auto r = dev.try_reset();
				std::printf("%s\n", r ? "reset: RUNNING" : r.describe().c_str());
				continue;
			}
			rc = set_one(dev, line) ? 0 : 1;
		}
	} else if (o.hold > 0) {
		std::printf("holding %s for %.1f s (the state is kept while the fd is held)\n", o.uuid.c_str(), o.hold);
		std::fflush(stdout);
		::poll(nullptr, 0, static_cast<int>(o.hold * 1000));
	}
	return rc;
}

int cmd_knob(const ControlCommands::Options &o)
{
	Knobs k;
	for (const std::string &spec : o.arc_delays) {
		auto a = spec.find(':');
		auto b = a == std::string::npos ? a : spec.find(':', a + 1);
		if (b == std::string::npos)
			usage_error("--arc-delay wants FROM:TO:US, got '" + spec + "'");
		ArcDelay d;
		d.from = arc_state(spec.substr(0, a));
		d.to = arc_state(spec.substr(a + 1, b - a - 1));
		d.delay_us = static_cast<std::uint32_t>(parse_size(spec.substr(b + 1)));
		k.arc_delays.push_back(d);
	}
	k.load_ns_per_kib = o.load_ns_per_kib;
	k.load_us_per_resource = o.load_us_per_resource;
	k.resource_bytes = o.resource_bytes;
	k.dirty_rate = o.dirty_rate;
	if (o.knob_mem_size)
		k.mem_size = parse_size(*o.knob_mem_size);
	if (o.reinit_policy) {
		auto p = parse_reinit_policy(*o.reinit_policy);
		if (!p)
			usage_error("--reinit-policy wants fold or discard");
		k.reinit_policy = *p;
	}
	k.refuse_precopy_v2 = o.refuse_precopy_v2;
	Client c = Client::open();
	// Without changes, KNOBS_SET with an empty nest reports the knobs.
	Knobs now = c.set_knobs(o.uuid, k);
	if (o.json)
		std::cout << knobs_json(now).dump(2) << "\n";
	else
		print_knobs(now);
	return 0;
}

int cmd_fault_add(const ControlCommands::Options &o)
{
	Fault f;
	auto site = parse_site(o.site);
	if (!site)
		usage_error("unknown site '" + o.site + "' (set_state, read, write, precopy_info, data_size, reset, open)");
	auto effect = parse_effect(o.effect);
	if (!effect)
		usage_error("unknown effect '" + o.effect +
			    "' (fail, fail_to_error, delay, short_io, corrupt, garbage_size)");
	f.site = *site;
	f.effect = *effect;
	if (!o.from.empty())
		f.from = arc_state(o.from);
	if (!o.to.empty())
		f.to = arc_state(o.to);
	int triggers = !!o.nth + !!o.every + !!o.first + !!o.ppm;
	if (triggers > 1)
		usage_error("give one of --nth, --every, --first, --probability");
	if (o.nth) {
		f.trigger = Trigger::Nth;
		f.n = o.nth;
	} else if (o.every) {
		f.trigger = Trigger::EveryNth;
		f.n = o.every;
	} else if (o.first) {
		f.trigger = Trigger::FirstN;
		f.n = o.first;
	} else if (o.ppm) {
		f.trigger = Trigger::Random;
		f.probability_ppm = o.ppm;
		f.seed = o.seed;
	} else if (o.seed) {
		usage_error("--seed goes with --probability");
	}
	if (!o.err.empty()) {
		auto e = parse_errno(o.err);
		if (!e)
			usage_error("not an errno a fault can return: '" + o.err + "' (EIO, EXDEV, ... or a number 1.." +
				    std::to_string(kMaxFaultErrno) + "; kernel-internal ones such as ERESTARTSYS are refused)");
		f.err = static_cast<std::uint32_t>(*e);
	}
	f.delay_us = o.delay_us;
	std::uint32_t id = Client::open().add_fault(o.uuid, f);
	if (o.json)
		std::cout << json{{"id", id}}.dump() << "\n";
	else
		std::printf("fault #%u: %s\n", id, describe(f, false).c_str());
	return 0;
}

int cmd_fault_list(const ControlCommands::Options &o)
{
	auto faults = Client::open().faults(o.uuid);
	if (o.json) {
		json j = json::array();
		for (const Fault &f : faults)
			j.push_back(fault_json(f));
		std::cout << j.dump(2) << "\n";
		return 0;
	}
	if (faults.empty())
		std::printf("no faults\n");
	for (const Fault &f : faults)
		std::printf("#%u %s\n", f.id, describe(f).c_str());
	return 0;
}

int cmd_fault_clear(const ControlCommands::Options &o)
{
	Client::open().clear_faults(o.uuid, o.fault_id);
	return 0;
}

int cmd_workload(const ControlCommands::Options &o)
{
	auto w = parse_workload(o.action);
	if (!w)
		usage_error("workload action is dirty or reconfig");
	Client::open().workload(o.uuid, *w, o.count);
	return 0;
}

int cmd_counters_reset(const ControlCommands::Options &o)
{
	Client::open().reset_counters(o.uuid);
	return 0;
}

std::optional<std::string> quirk_scope(const ControlCommands::Options &o)
{
	if (o.quirk_uuid.empty())
		return std::nullopt;
	return o.quirk_uuid;
}

unsigned quirk_bit(const std::string &name)
{
	auto q = parse_quirk(name);
	if (!q)
		usage_error("no quirk '" + name + "'; vfio-migctl quirk list shows them");
	return *q;
}

void print_quirk_mask(const ControlCommands::Options &o, std::uint64_t mask)
{
	if (o.json)
		std::cout << json{{"uuid", o.quirk_uuid.empty() ? json(nullptr) : json(o.quirk_uuid)},
				  {"mask", mask},
				  {"quirks", describe_quirks(mask)}}
				     .dump()
			  << "\n";
	else
		std::printf("%s: %s\n", o.quirk_uuid.empty() ? "module-global" : o.quirk_uuid.c_str(),
			    describe_quirks(mask).c_str());
}

int cmd_quirk_list(const ControlCommands::Options &o)
{
	Client c = Client::open();
	std::uint64_t global = c.quirks();
	std::uint64_t own = o.quirk_uuid.empty() ? 0 : c.quirks(o.quirk_uuid);
	if (o.json) {
		json j = json::array();
		for (unsigned i = 0; i < kQuirkCount; i++)
			j.push_back({{"bit", i},
				     {"name", quirk_name(i)},
				     {"global", bool(global >> i & 1)},
				     {"device", bool(own >> i & 1)},
				     {"imitates", quirk_description(i)}});
		std::cout << j.dump(2) << "\n";
		return 0;
	}
	std::printf("%-3s %-24s %-6s %s\n", "bit", "name", "on", "imitates");
	for (unsigned i = 0; i < kQuirkCount; i++) {
		const char *on = (global >> i & 1) ? "global" : (own >> i & 1) ? "device" : "-";
		std::printf("%-3u %-24s %-6s %s\n", i, quirk_name(i).c_str(), on, quirk_description(i).c_str());
	}
	return 0;
}

int cmd_quirk_enable(const ControlCommands::Options &o)
{
	unsigned bit = quirk_bit(o.quirk);
	Client c = Client::open();
	auto scope = quirk_scope(o);
	print_quirk_mask(o, c.set_quirks(c.quirks(scope) | std::uint64_t{1} << bit, scope));
	return 0;
}

int cmd_quirk_disable(const ControlCommands::Options &o)
{
	unsigned bit = quirk_bit(o.quirk);
	Client c = Client::open();
	auto scope = quirk_scope(o);
	print_quirk_mask(o, c.set_quirks(c.quirks(scope) & ~(std::uint64_t{1} << bit), scope));
	return 0;
}

int cmd_quirk_clear(const ControlCommands::Options &o)
{
	print_quirk_mask(o, Client::open().set_quirks(0, quirk_scope(o)));
	return 0;
}

int cmd_watch(const ControlCommands::Options &o)
{
	EventSubscription sub;
	g_watch = &sub;
	catch_signals();
	using Clock = std::chrono::steady_clock;
	auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long long>(o.timeout * 1000));
	std::uint64_t seen = 0;
	int rc = 0;
	while (!g_interrupted && (!o.watch_count || seen < *o.watch_count)) {
		auto wait = std::chrono::milliseconds(-1);
		if (o.timeout > 0) {
			wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
			if (wait.count() <= 0)
				break;
		}
		auto e = sub.pop(wait);
		if (!e)
			continue;
		if (!o.uuid.empty() && e->uuid.rfind(o.uuid, 0) != 0)
			continue;
		seen++;
		if (o.json) {
			std::cout << event_json(*e).dump() << std::endl;
		} else {
			std::printf("[%6llu.%06llu] %.8s #%-4llu %s\n",
				    static_cast<unsigned long long>(e->timestamp_ns / 1000000000),
				    static_cast<unsigned long long>(e->timestamp_ns % 1000000000 / 1000), e->uuid.c_str(),
				    static_cast<unsigned long long>(e->seq), describe(*e).c_str());
			std::fflush(stdout);
		}
	}
	if (sub.overruns())
		std::fprintf(stderr, "vfio-migctl: %llu event overrun(s): some events were lost\n",
			     static_cast<unsigned long long>(sub.overruns()));
	if (o.watch_count && seen < *o.watch_count) {
		std::fprintf(stderr, "vfio-migctl: watch ended after %llu of %llu events\n",
			     static_cast<unsigned long long>(seen), static_cast<unsigned long long>(*o.watch_count));
		rc = 1;
	}
	g_watch = nullptr;
	return rc;
}

} // namespace

ControlCommands::ControlCommands(CLI::App &app) : o_(std::make_unique<Options>())
{
	Options &o = *o_;
	auto add = [&](CLI::App *sub, int (*fn)(const Options &)) {
		commands_.emplace_back(sub, [this, fn] { return fn(*o_); });
		return sub;
	};
	auto uuid_arg = [&](CLI::App *sub) { sub->add_option("uuid", o.uuid, "Device (mdev uuid)")->required(); };

	auto *list = add(app.add_subcommand("list", "List vfio_mig_emu instances (netlink DEV_GET dump: profile, "
						    "state, open, sessions, digest; does not open the devices)"),
			 cmd_list);
	list->add_flag("--json", o.json, "Print as JSON");

	auto *show = add(app.add_subcommand("show", "Show one device: state, counters, precopy figures, digest, "
						    "knobs and faults"),
			 cmd_show);
	uuid_arg(show);
	show->add_flag("--json", o.json, "Print as JSON");

	auto *stats = add(app.add_subcommand("stats", "Module-wide live objects (devices, files, buffers, pages)"),
			  cmd_stats);
	stats->add_flag("--json", o.json, "Print as JSON");

	auto *create = add(app.add_subcommand("create", "Create an mdev instance of a profile; prints its uuid"),
			   cmd_create);
	create->add_option("profile", o.profile, "full, stopcopy, p2p or precopy")->required();
	create->add_option("--mem-size", o.mem_size, "Device memory size (bytes, or with K/M/G)");
	create->add_option("--uuid", o.new_uuid, "Use this uuid instead of a random one");

	auto *remove = add(app.add_subcommand("remove", "Remove an mdev instance"), cmd_remove);
	uuid_arg(remove);

	auto *state = add(app.add_subcommand(
				  "state",
				  "Get a device's migration state, or set it. Setting opens the device fd in this "
				  "process: the state (and a data fd) lasts only while vfio-migctl holds it; closing "
				  "ends the sessions and the next open resets the device. Use --hold or --interactive "
				  "to keep it, and a device another process holds cannot be set (EBUSY)"),
			  cmd_state);
	uuid_arg(state);
	state->add_option("state", o.state, "Target state (RUNNING, STOP, STOP_COPY, RESUMING, RUNNING_P2P, "
					    "PRE_COPY, PRE_COPY_P2P)");
	state->add_option("--hold", o.hold, "Keep the device fd open this many seconds after setting");
	state->add_flag("-i,--interactive", o.interactive,
			"Keep the device open and read target states from stdin, one per line");

	auto *knob = add(app.add_subcommand("knob", "Set per-device knobs (all validated by the kernel, applied "
						    "together or not at all) and print them all"),
			 cmd_knob);
	uuid_arg(knob);
	knob->add_option("--arc-delay", o.arc_delays,
			 "FROM:TO:US, states or ANY; the time each matching arc takes (repeatable, later win)");
	knob->add_option("--load-ns-per-kib", o.load_ns_per_kib, "Destination cost per KiB of critical data");
	knob->add_option("--load-us-per-resource", o.load_us_per_resource, "Destination cost per resource");
	knob->add_option("--mem-size", o.knob_mem_size, "Device memory size (only while the device is not open)");
	knob->add_option("--resource-bytes", o.resource_bytes, "Context bytes per resource (critical data size)");
	knob->add_option("--dirty-rate", o.dirty_rate, "Pages per second the background workload dirties (0 = off)");
	knob->add_option("--reinit-policy", o.reinit_policy, "fold or discard (PRECOPY_INFOv2 REINIT)");
	knob->add_option("--refuse-precopy-v2", o.refuse_precopy_v2,
			 "1: SET PRECOPY_INFOv2 fails with ENOTTY, as on a driver predating it (QEMU 11.1 then "
			 "takes the legacy path); 0: accept (default)");
	knob->add_flag("--json", o.json, "Print as JSON");

	auto *fault = app.add_subcommand("fault", "Fault injection: add, list, clear");
	fault->require_subcommand(1);
	auto *fadd = add(fault->add_subcommand("add", "Add a fault: where (--site, and --from/--to for set_state), "
						      "when (--nth, --every, --first, --probability; default every "
						      "call) and what (--effect with --errno or --delay-us)"),
			 cmd_fault_add);
	uuid_arg(fadd);
	fadd->add_option("--site", o.site, "set_state, read, write, precopy_info, data_size, reset, open")->required();
	fadd->add_option("--from", o.from, "set_state only: the arc's from state (or ANY)");
	fadd->add_option("--to", o.to, "set_state only: the arc's to state (or ANY)");
	fadd->add_option("--nth", o.nth, "Fire on the Nth call only");
	fadd->add_option("--every", o.every, "Fire on calls N, 2N, 3N, ...");
	fadd->add_option("--first", o.first, "Fire on calls 1..N");
	fadd->add_option("--probability", o.ppm, "Fire with this probability, parts per million");
	fadd->add_option("--seed", o.seed, "PRNG seed for --probability (same seed, same pattern)");
	fadd->add_option("--effect", o.effect, "fail, fail_to_error, delay, short_io, corrupt, garbage_size")
		->required();
	fadd->add_option("--errno", o.err, "fail effects: errno name or number (default EIO)");
	fadd->add_option("--delay-us", o.delay_us, "delay effect: microseconds");
	fadd->add_flag("--json", o.json, "Print the id as JSON");
	auto *flist = add(fault->add_subcommand("list", "List a device's faults with calls and hits"), cmd_fault_list);
	uuid_arg(flist);
	flist->add_flag("--json", o.json, "Print as JSON");
	auto *fclear = add(fault->add_subcommand("clear", "Remove one fault, or all"), cmd_fault_clear);
	uuid_arg(fclear);
	fclear->add_option("id", o.fault_id, "Fault id (default: all)");

	auto *workload = add(app.add_subcommand("workload", "Run a workload action: dirty COUNT pages, or reconfig "
							    "(add COUNT resources: new critical data)"),
			     cmd_workload);
	uuid_arg(workload);
	workload->add_option("action", o.action, "dirty or reconfig")->required();
	workload->add_option("count", o.count, "Pages or resources")->required();

	auto *counters = app.add_subcommand("counters", "Device counters");
	counters->require_subcommand(1);
	auto *creset = add(counters->add_subcommand("reset", "Zero a device's counters"), cmd_counters_reset);
	uuid_arg(creset);

	auto *quirk = app.add_subcommand(
		"quirk", "Seeded driver bugs: make the module break the VFIO migration uAPI on purpose, one "
			 "realistic way per quirk, to prove a test suite notices (module-global by default, "
			 "or one device with --uuid; a device behaves as the OR of both)");
	quirk->require_subcommand(1);
	auto *qlist = add(quirk->add_subcommand("list", "Every quirk: bit, name, whether it is on, what it imitates"),
			  cmd_quirk_list);
	qlist->add_option("--uuid", o.quirk_uuid, "Also show this device's own mask");
	qlist->add_flag("--json", o.json, "Print as JSON");
	auto *qenable = add(quirk->add_subcommand("enable", "Turn one quirk on (keeps the others)"), cmd_quirk_enable);
	qenable->add_option("name", o.quirk, "Quirk name (see quirk list) or bit number")->required();
	auto *qdisable = add(quirk->add_subcommand("disable", "Turn one quirk off"), cmd_quirk_disable);
	qdisable->add_option("name", o.quirk, "Quirk name (see quirk list) or bit number")->required();
	auto *qclear = add(quirk->add_subcommand("clear", "Turn every quirk off"), cmd_quirk_clear);
	for (CLI::App *q : {qenable, qdisable, qclear}) {
		q->add_option("--uuid", o.quirk_uuid, "This device only (default: module-global, every device)");
		q->add_flag("--json", o.json, "Print the resulting mask as JSON");
	}

	auto *watch = add(app.add_subcommand("watch", "Stream control-plane events live (state arcs, sessions, "
						      "faults hit, critical data, resets), one line each: timestamp, "
						      "uuid, seq, event, details"),
			  cmd_watch);
	watch->add_option("uuid", o.uuid, "Only this device (a uuid prefix is enough)");
	watch->add_flag("--json", o.json, "One JSON object per line");
	watch->add_option("--count", o.watch_count, "Exit after N events");
	watch->add_option("--timeout", o.timeout, "Exit after S seconds");
}

ControlCommands::~ControlCommands() = default;

bool ControlCommands::run(int *rc)
{
	for (auto &[sub, fn] : commands_) {
		if (!sub->parsed())
			continue;
		std::string name = sub->get_name();
		if (CLI::App *parent = sub->get_parent(); parent && parent->get_parent())
			name = parent->get_name() + " " + name;
		try {
			*rc = fn();
		} catch (const CLI::ValidationError &e) {
			std::fprintf(stderr, "vfio-migctl %s: %s\n", name.c_str(), e.what());
			*rc = 2;
		} catch (const std::exception &e) {
			std::fprintf(stderr, "vfio-migctl %s: %s\n", name.c_str(), e.what());
			*rc = 1;
		}
		return true;
	}
	return false;
}

} // namespace migctl
