// vfio-migctl qemu-downtime (see migctl_qemu.hpp).
#include "migctl_qemu.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <vfiomig/control.hpp>
#include <vfiomig/qemu_lane.hpp>
#include <vfiomig/state.hpp>

#include "vfio_mig_emu.h"

namespace migctl {
namespace {

using namespace vfiomig;
using namespace std::chrono_literals;
using nlohmann::json;

struct Role {
	unsigned count = 0, initial_resources = 0, late_resources = 0, dirty_rate = 0, scribble_pages = 0;
};

struct Setup {
	unsigned runs = 5;
	unsigned downtime_limit_ms = 300;
	std::uint32_t resource_bytes = 0, load_us_per_resource = 0, load_ns_per_kib = 0;
	Role busy, idle;
};

Setup load(const std::string &path)
{
	std::ifstream in(path);
	if (!in)
		throw std::runtime_error("cannot open the fixture " + path);
	json j = json::parse(in);
	Setup s;
	s.runs = j.value("runs", 5u);
	s.downtime_limit_ms = j.value("downtime_limit_ms", 300u);
	const json &c = j.at("cost_model");
	s.resource_bytes = c.value("resource_bytes", 0u);
	s.load_us_per_resource = c.value("load_us_per_resource", 0u);
	s.load_ns_per_kib = c.value("load_ns_per_kib", 0u);
	for (const json &d : j.at("devices")) {
		Role r{d.value("count", 1u), d.value("initial_resources", 0u), d.value("late_resources", 0u),
		       d.value("dirty_rate", 0u), d.value("scribble_pages", 0u)};
		(d.value("role", "") == "busy" ? s.busy : s.idle) = r;
	}
	if (s.busy.count != 1)
		throw std::runtime_error(path + ": the experiment wants exactly one busy device");
	return s;
}

struct Run {
	double downtime_ms = 0, total_ms = 0;
	/// Source STOP event to destination RESUME event: what the guest sees.
	double pause_ms = 0;
	unsigned reinits = 0, approvals = 0;
	bool ok = false;
	std::string error;
};

Run run_once(control::Client &ctl, const qemu::Build &build, const Setup &s, bool v2, unsigned index,
	     const std::string &results)
{
	qemu::LaneOptions opt;
	opt.results_root = results;
	opt.profiles.assign(1 + s.idle.count, Profile::Full);
	opt.src_knobs.resource_bytes = s.resource_bytes;
	opt.src_knobs.refuse_precopy_v2 = !v2;
	opt.dst_knobs.load_us_per_resource = s.load_us_per_resource;
	opt.dst_knobs.load_ns_per_kib = s.load_ns_per_kib;
	opt.dst_knobs.resource_bytes = s.resource_bytes;
	opt.dst_knobs.refuse_precopy_v2 = !v2;
	qemu::QemuLane lane(ctl, build, fmt::format("downtime_{}_{}_{}", build.label, v2 ? "v2" : "v1", index), opt);
	const std::string busy = lane.pairs()[0].src.uuid();
	for (size_t i = 0; i < lane.pairs().size(); i++) {
		const Role &r = i == 0 ? s.busy : s.idle;
		const std::string &u = lane.pairs()[i].src.uuid();
		if (r.initial_resources)
			ctl.workload(u, control::Workload::Reconfig, r.initial_resources);
		if (r.scribble_pages)
			ctl.workload(u, control::Workload::Dirty, r.scribble_pages);
		if (r.dirty_rate) {
			control::Knobs k;
			k.dirty_rate = r.dirty_rate;
			ctl.set_knobs(u, k);
		}
	}
	// Hold precopy open until the busy device reconfigures: the worst
	// moment for a legacy consumer and the one REINIT exists for.
	lane.set_parameters({{"downtime-limit", 1}});
	lane.start_migration();
	Run run;
	auto approvals = [&] { return lane.dst_trace("loadvm_approve_switchover").size(); };
	const size_t devices = lane.pairs().size();
	if (!qemu::QemuLane::wait_for([&] { return approvals() >= devices; }, 60s)) {
		run.error = "the destination never approved switchover for every device's initial data";
		return run;
	}
	// Release precopy and reconfigure at once: the new resources appear
	// as QEMU decides whether to switch over, the moment REINIT is for. A
	// reconfiguration that comes too late finds the device stopped (EBUSY)
	// and the run is repeated.
	lane.set_parameters({{"downtime-limit", s.downtime_limit_ms}});
	try {
		ctl.workload(busy, control::Workload::Reconfig, s.busy.late_resources);
	} catch (const Error &e) {
		if (e.err() != EBUSY)
			throw;
		run.error = "too late";
		return run;
	}
	auto info = lane.wait_final(180s, /*converge=*/true);
	if (info.value("status", "") != "completed") {
		run.error = "migration " + info.value("status", "?") + ": " + info.value("error-desc", "");
		return run;
	}
	run.downtime_ms = info.value("downtime", 0.0);
	run.total_ms = info.value("total-time", 0.0);
	// QEMU's "downtime" is the source's: from the stop until it has sent
	// the last byte. The destination may still be loading device state
	// then; the guest is paused until the destination's RESUME.
	auto stamp = [](const qmp::json &e) {
		const auto &t = e.at("timestamp");
		return t.at("seconds").get<double>() * 1e3 + t.at("microseconds").get<double>() / 1e3;
	};
	auto stop = lane.src().qmp().wait_event("STOP", 5s);
	auto resume = lane.dst().qmp().wait_event("RESUME", 30s);
	if (!stop || !resume) {
		run.error = "no STOP event on the source or no RESUME on the destination";
		return run;
	}
	run.pause_ms = stamp(*resume) - stamp(*stop);
	for (const auto &t : lane.src_trace("vfio_query_precopy_size"))
		if (t.args.find(busy) != std::string::npos && t.args.find("reinit 1") != std::string::npos)
			run.reinits++;
	run.approvals = static_cast<unsigned>(approvals());
	for (auto &p : lane.pairs())
		if (ctl.device(p.src.uuid(), {.digest = true}).digest != ctl.device(p.dst.uuid(), {.digest = true}).digest) {
			run.error = "digests differ on " + p.src.uuid();
			return run;
		}
	run.ok = true;
	return run;
}

double median(std::vector<double> v)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int run_experiment(const Setup &s, const std::string &json_out, const std::string &results)
{
	const qemu::Build *build = nullptr;
	for (const auto &b : qemu::lane_builds().found)
		if (b.has_precopy_info_v2())
			build = &b;
	if (!build) {
		std::fprintf(stderr, "vfio-migctl qemu-downtime: no QEMU with PRECOPY_INFOv2 (11.1+): %s\n",
			     qemu::lane_missing_reason().c_str());
		return 4;
	}
	control::Client ctl = control::Client::open();
	std::printf("%s, %u busy + %u idle devices, %u runs per mode, downtime-limit %u ms\n",
		    build->version_text.c_str(), s.busy.count, s.idle.count, s.runs, s.downtime_limit_ms);
	json runs_json = json::array();
	std::vector<double> down[2], total[2], pause[2];
	bool all_ok = true;
	for (unsigned i = 0; i < s.runs; i++) {
		for (bool v2 : {false, true}) {
			Run r;
			for (int attempt = 0; attempt < 3; attempt++) {
				r = run_once(ctl, *build, s, v2, i, results);
				if (r.error != "too late")
					break;
			}
			if (r.error == "too late")
				r.error = "precopy was over before the reconfiguration, 3 times";
			const char *mode = v2 ? "v2" : "v1";
			if (r.ok) {
				down[v2].push_back(r.downtime_ms);
				total[v2].push_back(r.total_ms);
				pause[v2].push_back(r.pause_ms);
				std::printf("  run %u %s: downtime %.0f ms, STOP->RESUME %.0f ms, total-time %.0f ms, "
					    "REINIT %u, approvals %u\n",
					    i + 1, mode, r.downtime_ms, r.pause_ms, r.total_ms, r.reinits, r.approvals);
			} else {
				all_ok = false;
				std::printf("  run %u %s: FAILED: %s\n", i + 1, mode, r.error.c_str());
			}
			std::fflush(stdout);
			runs_json.push_back({{"run", i + 1}, {"mode", mode}, {"ok", r.ok}, {"error", r.error},
					     {"downtime_ms", r.downtime_ms}, {"pause_ms", r.pause_ms},
					     {"total_ms", r.total_ms},
					     {"reinits", r.reinits}, {"approvals", r.approvals}});
		}
	}
	double d1 = median(down[0]), d2 = median(down[1]), t1 = median(total[0]), t2 = median(total[1]);
	double p1 = median(pause[0]), p2 = median(pause[1]);
	auto change = [](double a, double b) { return a > 0 ? 100.0 * (b - a) / a : 0.0; };
	std::printf("\n%-42s %12s %15s %12s\n", "QEMU's figures (medians)", "downtime", "STOP->RESUME", "total-time");
	std::printf("%-42s %9.0f ms %12.0f ms %9.0f ms\n", "opt-in refused (legacy path, no REINIT)", d1, p1, t1);
	std::printf("%-42s %9.0f ms %12.0f ms %9.0f ms\n", "PRECOPY_INFOv2 (REINIT, re-usable ack)", d2, p2, t2);
	std::printf("%-42s %10.0f %% %13.0f %% %10.0f %%\n", "change", change(d1, d2), change(p1, p2),
		    change(t1, t2));
	std::printf("(downtime: query-migrate, the source's view; STOP->RESUME: the source's STOP event to "
		    "the destination's RESUME event, what the guest sees)\n");
	std::printf("%-44s %s\n", "seeds (mlx5, QEMU series, total downtime)", "2352 -> 1335 ms (-43 %)");
	std::printf("%-44s %s\n", "seeds (busy device's share)", "1600 -> 520 ms (-67 %)");
	if (!json_out.empty()) {
		json j = {{"qemu", build->version_text},
			  {"runs", runs_json},
			  {"median", {{"v1", {{"downtime_ms", d1}, {"total_ms", t1}}},
				      {"v2", {{"downtime_ms", d2}, {"total_ms", t2}}},
				      {"v1_pause_ms", p1}, {"v2_pause_ms", p2}}},
			  {"ok", all_ok}};
		std::ofstream(json_out) << j.dump(2) << "\n";
	}
	return all_ok ? 0 : 1;
}

std::uint64_t parse_bytes(const std::string &s)
{
	size_t pos = 0;
	std::uint64_t v = std::stoull(s, &pos);
	std::string unit = s.substr(pos);
	if (unit == "K" || unit == "k")
		v <<= 10;
	else if (unit == "M" || unit == "m")
		v <<= 20;
	else if (unit == "G" || unit == "g")
		v <<= 30;
	else if (!unit.empty())
		throw std::runtime_error("bad size " + s + " (N, NK, NM or NG)");
	return v;
}

struct ExpectedCase {
	std::string qemu;
	std::uint64_t size = 0, bandwidth = 0;
	bool garbage = false;
	std::int64_t expected_ms = -1, limit_ms = 300;
	bool converged_alone = false;
	bool limit_from_size = false; ///< limit from the device size, not QEMU's estimate
	std::string status;
	double downtime_ms = 0;
};

ExpectedCase expected_case(control::Client &ctl, const qemu::Build &build, std::uint64_t size,
			   std::uint64_t bandwidth, bool garbage, const std::string &results)
{
	ExpectedCase c;
	c.qemu = build.label;
	c.size = size;
	c.bandwidth = bandwidth;
	c.garbage = garbage;
	qemu::LaneOptions opt;
	opt.results_root = results;
	// No PRE_COPY: the whole state moves in the stop window.
	opt.profiles = {Profile::P2P};
	opt.src_knobs.mem_size = size;
	opt.dst_knobs.mem_size = size;
	qemu::QemuLane lane(ctl, build,
			    fmt::format("expected_{}_{}M_{}M{}", build.label, size >> 20, bandwidth >> 20,
					garbage ? "_garbage" : ""),
			    opt);
	const std::string src = lane.pairs()[0].src.uuid();
	ctl.workload(src, control::Workload::Dirty, static_cast<std::uint32_t>(size / 4096));
	if (garbage) {
		control::Fault f;
		f.site = control::Site::DataSize;
		f.effect = control::Effect::GarbageSize;
		f.trigger = control::Trigger::EveryNth;
		f.n = 1;
		ctl.add_fault(src, f);
	}
	lane.set_parameters({{"max-bandwidth", bandwidth}});
	lane.start_migration();
	// Let QEMU measure the bandwidth and report its estimate.
	auto info = lane.wait_final(12s);
	c.status = info.value("status", "?");
	if (c.status == "completed") {
		c.converged_alone = true;
	} else {
		c.expected_ms = info.value("expected-downtime", std::int64_t(-1));
		if (c.expected_ms > c.limit_ms && c.expected_ms < 600000) {
			// The series' procedure: the limit QEMU says it needs.
			c.limit_ms = c.expected_ms + c.expected_ms / 10;
		} else {
			// QEMU's estimate leaves the device out: a user who knew
			// the device's size would allow size / bandwidth.
			c.limit_ms = static_cast<std::int64_t>(1500.0 * static_cast<double>(size) /
							       static_cast<double>(bandwidth));
			c.limit_from_size = true;
		}
		lane.set_parameters({{"downtime-limit", c.limit_ms}});
		info = lane.wait_final(60s);
		c.status = info.value("status", "?");
	}
	if (c.expected_ms < 0 && info.contains("expected-downtime"))
		c.expected_ms = info["expected-downtime"].get<std::int64_t>();
	c.downtime_ms = info.value("downtime", 0.0);
	if (garbage)
		ctl.clear_faults(src);
	return c;
}

int run_expected(const std::vector<std::uint64_t> &sizes, const std::vector<std::uint64_t> &bws,
		 const std::string &json_out, const std::string &results)
{
	const auto &builds = qemu::lane_builds().found;
	if (builds.empty()) {
		std::fprintf(stderr, "vfio-migctl qemu-expected-downtime: %s\n", qemu::lane_missing_reason().c_str());
		return 4;
	}
	control::Client ctl = control::Client::open();
	json rows = json::array();
	std::printf("%-6s %9s %11s %12s %10s %11s %10s %7s  %s\n", "QEMU", "state", "bandwidth", "expected",
		    "limit", "downtime", "ratio", "alone", "status");
	auto print = [&](const ExpectedCase &c) {
		double ratio = c.expected_ms > 0 ? c.downtime_ms / static_cast<double>(c.expected_ms) : 0;
		std::printf("%-6s %6lu MiB %7lu MiB/s %9lld ms %7lld ms %8.0f ms %10.2f %7s  %s%s%s\n", c.qemu.c_str(),
			    static_cast<unsigned long>(c.size >> 20), static_cast<unsigned long>(c.bandwidth >> 20),
			    static_cast<long long>(c.expected_ms), static_cast<long long>(c.limit_ms), c.downtime_ms,
			    ratio, c.converged_alone ? "yes" : "no", c.status.c_str(),
			    c.garbage ? " (GARBAGE_SIZE on MIG_DATA_SIZE)" : "",
			    c.limit_from_size ? " (limit from the device size: the estimate left it out)" : "");
		std::fflush(stdout);
		rows.push_back({{"qemu", c.qemu}, {"state_bytes", c.size}, {"bandwidth", c.bandwidth},
				{"garbage_size", c.garbage}, {"expected_ms", c.expected_ms}, {"limit_ms", c.limit_ms},
				{"downtime_ms", c.downtime_ms}, {"converged_at_default_limit", c.converged_alone},
				{"limit_from_size", c.limit_from_size},
				{"status", c.status}});
	};
	bool ok = true;
	for (const auto &b : builds) {
		for (auto size : sizes)
			for (auto bw : bws) {
				auto c = expected_case(ctl, b, size, bw, false, results);
				ok = ok && c.status == "completed";
				print(c);
			}
		print(expected_case(ctl, b, sizes.front(), bws.back(), true, results));
	}
	if (!json_out.empty())
		std::ofstream(json_out) << json{{"rows", rows}}.dump(2) << "\n";
	return ok ? 0 : 1;
}

std::vector<std::uint64_t> parse_sizes(const std::vector<std::string> &texts)
{
	std::vector<std::uint64_t> v;
	for (const auto &t : texts)
		v.push_back(parse_bytes(t));
	return v;
}

/// A subcommand's body: an exception becomes "vfio-migctl NAME: what" and
/// exit status 1.
int guarded(const char *name, const std::function<int()> &body)
{
	try {
		return body();
	} catch (const std::exception &e) {
		std::fprintf(stderr, "vfio-migctl %s: %s\n", name, e.what());
		return 1;
	}
}

struct StopWindowRun {
	double downtime_ms = 0, pause_ms = 0, total_ms = 0;
	std::string error; ///< empty: completed with equal digests
};

double event_ms(const qmp::json &e)
{
	const auto &t = e.at("timestamp");
	return t.at("seconds").get<double>() * 1e3 + t.at("microseconds").get<double>() / 1e3;
}

StopWindowRun stop_window_once(control::Client &ctl, const qemu::Build &build, std::uint64_t size, unsigned index,
			       const std::string &results)
{
	qemu::LaneOptions opt;
	opt.results_root = results;
	opt.profiles = {Profile::Full};
	opt.src_knobs.mem_size = size;
	opt.dst_knobs.mem_size = size;
	qemu::QemuLane lane(ctl, build, fmt::format("stop_window_{}_{}M_{}", build.label, size >> 20, index), opt);
	const std::string src = lane.pairs()[0].src.uuid();
	// As many workload steps as pages, once QEMU holds the device: the
	// pages are dirty when precopy starts and all go out in precopy.
	for (std::uint64_t left = size / 4096; left;) {
		auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(left, VFIO_MIG_EMU_MAX_DIRTY_STEPS));
		ctl.workload(src, control::Workload::Dirty, n);
		left -= n;
	}
	// Precopy is held open (downtime-limit 1 ms) until the device has
	// nothing left to send; then the limit is raised and QEMU switches
	// over. The stop window then moves no device memory, so nothing in it
	// should grow with the memory size: what does is the emulator's own.
	lane.set_parameters({{"max-bandwidth", 8ull << 30}, {"downtime-limit", 1}});
	lane.start_migration();
	StopWindowRun r;
	// Figures gone after they were seen: the session left PRE_COPY, QEMU
	// has switched over (it may, even at 1 ms, once little is left).
	bool seen = false;
	auto drained = [&] {
		const control::Precopy p = ctl.device(src).precopy;
		if (!p.initial_bytes || !p.dirty_bytes)
			return seen;
		seen = true;
		return *p.initial_bytes == 0 && *p.dirty_bytes == 0;
	};
	if (!qemu::QemuLane::wait_for(drained, 600s)) {
		r.error = "the device still had precopy data after 600 s";
		return r;
	}
	lane.set_parameters({{"downtime-limit", 300}});
	auto info = lane.wait_final(120s, /*converge=*/true);
	if (info.value("status", "") != "completed") {
		r.error = "migration " + info.value("status", "?") + ": " + info.value("error-desc", "");
		return r;
	}
	r.downtime_ms = info.value("downtime", 0.0);
	r.total_ms = info.value("total-time", 0.0);
	auto stop = lane.src().qmp().wait_event("STOP", 5s);
	auto resume = lane.dst().qmp().wait_event("RESUME", 30s);
	if (!stop || !resume) {
		r.error = "no STOP event on the source or no RESUME on the destination";
		return r;
	}
	r.pause_ms = event_ms(*resume) - event_ms(*stop);
	auto s = ctl.device(src, {.digest = true}).digest;
	auto d = ctl.device(lane.pairs()[0].dst.uuid(), {.digest = true}).digest;
	if (s != d)
		r.error = fmt::format("digests differ: source {:#010x}, destination {:#010x}", s.value_or(0),
				      d.value_or(0));
	return r;
}

int run_stop_window(const std::vector<std::uint64_t> &sizes, unsigned runs, double bound_ms,
		    const std::string &json_out, const std::string &results)
{
	const auto &builds = qemu::lane_builds().found;
	if (builds.empty()) {
		std::fprintf(stderr, "vfio-migctl qemu-stop-window: %s\n", qemu::lane_missing_reason().c_str());
		return 4;
	}
	const qemu::Build &build = builds.back();
	control::Client ctl = control::Client::open();
	std::printf("%s: a full device of each size, all memory dirtied by the workload after QEMU opened it,\n"
		    "no bandwidth cap, no cost-model knobs, precopy held (downtime-limit 1 ms) until the device\n"
		    "has sent everything, then downtime-limit 300 ms; medians of %u runs\n",
		    build.version_text.c_str(), runs);
	std::printf("%10s %12s %15s %12s  %s\n", "memory", "downtime", "STOP->RESUME", "total-time", "runs");
	json rows = json::array();
	std::vector<double> downs, pauses;
	bool ok = true;
	for (auto size : sizes) {
		std::vector<double> down, pause, total;
		std::string errors;
		for (unsigned i = 0; i < runs; i++) {
			StopWindowRun r = stop_window_once(ctl, build, size, i, results);
			if (!r.error.empty()) {
				ok = false;
				errors += (errors.empty() ? "" : "; ") + r.error;
				continue;
			}
			down.push_back(r.downtime_ms);
			pause.push_back(r.pause_ms);
			total.push_back(r.total_ms);
		}
		double dm = median(down), pm = median(pause), tm = median(total);
		downs.push_back(dm);
		pauses.push_back(pm);
		std::printf("%6llu MiB %9.0f ms %12.0f ms %9.0f ms  %zu of %u%s%s\n",
			    static_cast<unsigned long long>(size >> 20), dm, pm, tm, down.size(), runs,
			    errors.empty() ? "" : ": FAILED: ", errors.c_str());
		std::fflush(stdout);
		rows.push_back({{"mem_size", size}, {"downtime_ms", dm}, {"pause_ms", pm}, {"total_ms", tm},
				{"downtime_runs_ms", down}, {"pause_runs_ms", pause}, {"ok", errors.empty()},
				{"errors", errors}});
	}
	double growth_down = downs.back() - downs.front(), growth_pause = pauses.back() - pauses.front();
	bool met = ok && growth_down <= bound_ms && growth_pause <= bound_ms;
	std::printf("growth %llu MiB -> %llu MiB: downtime %+.0f ms, STOP->RESUME %+.0f ms (bound %.0f ms): %s\n",
		    static_cast<unsigned long long>(sizes.front() >> 20),
		    static_cast<unsigned long long>(sizes.back() >> 20), growth_down, growth_pause, bound_ms,
		    met ? "met" : "not met");
	if (!json_out.empty())
		std::ofstream(json_out) << json{{"qemu", build.version_text},
						{"rows", rows},
						{"growth_downtime_ms", growth_down},
						{"growth_pause_ms", growth_pause},
						{"bound_ms", bound_ms},
						{"met", met}}
						   .dump(2)
					<< "\n";
	return ok ? 0 : 1;
}

} // namespace

QemuStopWindow::QemuStopWindow(CLI::App &app)
{
	cmd_ = app.add_subcommand("qemu-stop-window",
				  "The downtime the emulator adds by device memory size: a full device of each SIZE, "
				  "memory dirtied after QEMU opened it, migrated by the newest QEMU found with no "
				  "bandwidth cap; QEMU's downtime and STOP->RESUME per size, growth against a bound");
	cmd_->add_option("--size", sizes_, "Device memory sizes, smallest first (repeatable; K, M, G)")
		->capture_default_str();
	cmd_->add_option("--runs", runs_, "Migrations per size (medians)")->capture_default_str()->check(
		CLI::PositiveNumber);
	cmd_->add_option("--bound-ms", bound_ms_, "Largest growth of the stop window from the smallest to the "
						  "largest size that counts as met")
		->capture_default_str();
	cmd_->add_option("--json", json_out_, "Also write the rows as JSON to this file");
	cmd_->add_option("--results", results_, "Folder for QEMU logs and traces (default $VM_RESULTS/qemu)");
}

bool QemuStopWindow::run(int *rc)
{
	if (!*cmd_)
		return false;
	*rc = guarded("qemu-stop-window", [&] {
		std::vector<std::uint64_t> sizes = parse_sizes(sizes_);
		if (sizes.empty())
			throw std::runtime_error("no --size given");
		return run_stop_window(sizes, static_cast<unsigned>(runs_), bound_ms_, json_out_, results_);
	});
	return true;
}

QemuExpectedDowntime::QemuExpectedDowntime(CLI::App &app)
{
	cmd_ = app.add_subcommand("qemu-expected-downtime",
				  "The pending-size series' test with QEMU 10.0 and 11.1: a device without PRE_COPY "
				  "holding SIZE of state, migration capped at BANDWIDTH; QEMU's expected-downtime, the "
				  "limit set to it, the actual downtime; and a device lying about its size");
	cmd_->add_option("--size", sizes_, "Device state sizes (repeatable; K, M, G)")->capture_default_str();
	cmd_->add_option("--bandwidth", bandwidths_, "max-bandwidth values, bytes/s (repeatable; K, M, G)")
		->capture_default_str();
	cmd_->add_option("--json", json_out_, "Also write the rows as JSON to this file");
	cmd_->add_option("--results", results_, "Folder for QEMU logs and traces (default $VM_RESULTS/qemu)");
}

bool QemuExpectedDowntime::run(int *rc)
{
	if (!*cmd_)
		return false;
	*rc = guarded("qemu-expected-downtime", [&] {
		return run_expected(parse_sizes(sizes_), parse_sizes(bandwidths_), json_out_, results_);
	});
	return true;
}

QemuDowntime::QemuDowntime(CLI::App &app)
{
	cmd_ = app.add_subcommand("qemu-downtime",
				  "The seeds' downtime experiment run by QEMU 11.1 (VFIOMIG_QEMU_11 or QEMU): one busy "
				  "device reconfiguring during precopy plus idle ones, with PRECOPY_INFOv2 and with the "
				  "opt-in refused; prints QEMU's downtime and total-time (medians)");
	cmd_->add_option("-f,--fixture", fixture_, "Fixture (JSON): setup and cost model")->capture_default_str();
	cmd_->add_option("--runs", runs_, "Runs per mode (default: the fixture's)");
	cmd_->add_option("--json", json_out_, "Also write the results as JSON to this file");
	cmd_->add_option("--results", results_, "Folder for QEMU logs and traces (default $VM_RESULTS/qemu)");
}

bool QemuDowntime::run(int *rc)
{
	if (!*cmd_)
		return false;
	*rc = guarded("qemu-downtime", [&] {
		Setup s = load(fixture_);
		if (runs_ > 0)
			s.runs = static_cast<unsigned>(runs_);
		return run_experiment(s, json_out_, results_);
	});
	return true;
}

} // namespace migctl
