#include "migctl_reinit.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include "vfiomig/control.hpp"
#include "vfiomig/emu.hpp"
#include "vfiomig/mdev.hpp"
#include "vfiomig/migrator.hpp"

using namespace vfiomig;

namespace migctl {

namespace {

struct Group {
	std::string role;
	unsigned count = 1;
	std::uint32_t initial_resources = 0, late_resources = 0, dirty_rate = 0, scribble_pages = 0;
};

struct Fixture {
	std::string name;
	unsigned runs = 3;
	double downtime_limit_ms = 300;
	unsigned min_iterations = 4;
	unsigned iteration_interval_ms = 20;
	std::uint32_t resource_bytes = 0, load_us_per_resource = 0, load_ns_per_kib = 0;
	std::vector<Group> groups;
};

Fixture load_fixture(const std::string &path)
{
	std::ifstream in(path);
	if (!in)
		throw Error(errno ? errno : ENOENT, "reinit-table: cannot open fixture " + path);
	nlohmann::json j = nlohmann::json::parse(in, nullptr, true, true);
	Fixture f;
	f.name = j.value("name", path);
	f.runs = j.value("runs", 3u);
	f.downtime_limit_ms = j.value("downtime_limit_ms", 300.0);
	f.min_iterations = j.value("min_iterations", 4u);
	f.iteration_interval_ms = j.value("iteration_interval_ms", 20u);
	const auto &cm = j.at("cost_model");
	f.resource_bytes = cm.value("resource_bytes", 0u);
	f.load_us_per_resource = cm.value("load_us_per_resource", 0u);
	f.load_ns_per_kib = cm.value("load_ns_per_kib", 0u);
	for (const auto &g : j.at("devices")) {
		Group x;
		x.role = g.value("role", "device");
		x.count = g.value("count", 1u);
		x.initial_resources = g.value("initial_resources", 0u);
		x.late_resources = g.value("late_resources", 0u);
		x.dirty_rate = g.value("dirty_rate", 0u);
		x.scribble_pages = g.value("scribble_pages", 0u);
		if (x.count == 0 || x.count > 16)
			throw Error(EINVAL, "reinit-table: fixture " + path + ": device count must be 1..16");
		f.groups.push_back(x);
	}
	if (f.runs == 0 || f.runs > 50 || f.min_iterations == 0)
		throw Error(EINVAL, "reinit-table: fixture " + path + ": runs must be 1..50, min_iterations >= 1");
	return f;
}

struct Node {
	const Group *group = nullptr;
	std::string role; ///< "busy", "idle1", ...
	MdevInstance src, dst;
};

struct Run {
	MigrationReport rep;
	double busy_ms = 0, busy_expected_ms = 0;
};

double median(std::vector<double> v)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	std::size_t m = v.size() / 2;
	return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string pct(double from, double to)
{
	if (!(from > 0))
		return "n/a";
	char b[32];
	std::snprintf(b, sizeof(b), "%+.0f %%", (to - from) * 100.0 / from);
	return b;
}

Run one_run(const Fixture &f, std::vector<std::unique_ptr<Node>> &nodes, bool v2, unsigned run)
{
	std::vector<std::unique_ptr<Device>> srcs, dsts;
	std::vector<MigrationPair> pairs;
	std::size_t busy = SIZE_MAX;
	for (std::size_t i = 0; i < nodes.size(); i++) {
		Node &n = *nodes[i];
		// A fresh open per run: the device is reset, a v2 opt-in of an
		// earlier run is gone with the closed fd.
		srcs.push_back(std::make_unique<Device>(Device::open_sysfs(n.src.sysfs_path())));
		dsts.push_back(std::make_unique<Device>(Device::open_sysfs(n.dst.sysfs_path())));
		emu::scribble(*srcs.back(), 1000 * run + static_cast<std::uint32_t>(i), n.group->scribble_pages).value();
		emu::reconfigure(*srcs.back(), n.group->initial_resources).value();
		pairs.push_back({srcs.back().get(), dsts.back().get()});
		if (n.group->late_resources && busy == SIZE_MAX)
			busy = i;
	}
	MigratorOptions o;
	o.ack = v2 ? AckMode::PerDevice : AckMode::Legacy;
	o.precopy_v2 = v2;
	o.parallel = true;
	o.downtime_limit = std::chrono::microseconds(static_cast<long>(f.downtime_limit_ms * 1000));
	o.min_iterations = f.min_iterations;
	o.iteration_interval = std::chrono::milliseconds(f.iteration_interval_ms);
	o.digest = [](Device &d) -> std::optional<std::uint32_t> { return emu::digest(d); };
	o.before_iteration = [&](unsigned it) {
		if (it + 1 != f.min_iterations)
			return;
		for (std::size_t i = 0; i < nodes.size(); i++)
			if (nodes[i]->group->late_resources)
				emu::reconfigure(*srcs[i], nodes[i]->group->late_resources).value();
	};
	Run r;
	r.rep = Migrator(pairs, o).run();
	if (busy != SIZE_MAX && r.rep.ok) {
		r.busy_ms = r.rep.devices[busy].downtime_ms;
		r.busy_expected_ms = r.rep.devices[busy].expected_ms;
	}
	return r;
}

int run_table(const Fixture &f, const std::string &json_out)
{
	if (!module_loaded()) {
		std::fprintf(stderr, "vfio-migctl: vfio_mig_emu is not loaded (%s absent)\n", mdev_parent_path().c_str());
		return 1;
	}
	control::Client nl = control::Client::open();
	std::vector<std::unique_ptr<Node>> nodes;
	unsigned idle_no = 0;
	for (const Group &g : f.groups) {
		for (unsigned k = 0; k < g.count; k++) {
			auto n = std::unique_ptr<Node>(new Node{&g, g.role, MdevInstance::create(Profile::Full),
								 MdevInstance::create(Profile::Full)});
			if (g.count > 1 || g.role == "idle")
				n->role = g.role + std::to_string(++idle_no);
			control::Knobs sk;
			sk.resource_bytes = f.resource_bytes;
			sk.dirty_rate = g.dirty_rate;
			nl.set_knobs(n->src.uuid(), sk);
			control::Knobs dk;
			dk.load_us_per_resource = f.load_us_per_resource;
			dk.load_ns_per_kib = f.load_ns_per_kib;
			nl.set_knobs(n->dst.uuid(), dk);
			nodes.push_back(std::move(n));
		}
	}

	std::printf("reinit-table: fixture %s: %zu devices (", f.name.c_str(), nodes.size());
	for (std::size_t i = 0; i < nodes.size(); i++)
		std::printf("%s%s", i ? ", " : "", nodes[i]->role.c_str());
	std::printf("), %u runs per protocol, downtime limit %.0f ms\n", f.runs, f.downtime_limit_ms);
	std::printf("  cost model: %u us per resource + %u ns/KiB on the destination, %u context bytes per resource\n",
		    f.load_us_per_resource, f.load_ns_per_kib, f.resource_bytes);
	std::printf("\n  %-9s %3s %9s %9s %9s %9s %9s %5s %5s %7s %s\n", "protocol", "run", "total ms", "busy ms",
		    "expect ms", "busy exp", "precopy", "iters", "acks", "reinits", "digests");

	nlohmann::json jruns = nlohmann::json::array();
	std::vector<double> total[2], busy[2], expected[2];
	bool all_ok = true;
	for (int v2 = 0; v2 < 2; v2++) {
		for (unsigned run = 1; run <= f.runs; run++) {
			Run r = one_run(f, nodes, v2 != 0, run);
			const char *proto = v2 ? "v2+REINIT" : "v1";
			if (!r.rep.ok) {
				all_ok = false;
				std::printf("  %-9s %3u FAILED: %s\n", proto, run, r.rep.error.c_str());
				continue;
			}
			std::uint32_t reinits = 0;
			for (const DeviceReport &d : r.rep.devices)
				reinits += d.reinits;
			bool match = r.rep.digests_match();
			all_ok = all_ok && match;
			std::printf("  %-9s %3u %9.1f %9.1f %9.1f %9.1f %9.1f %5u %5u %7u %s\n", proto, run,
				    r.rep.downtime_ms, r.busy_ms, r.rep.expected_downtime_ms, r.busy_expected_ms,
				    r.rep.precopy_ms, r.rep.iterations, r.rep.acks_sent, reinits,
				    match ? "match" : "MISMATCH");
			std::fflush(stdout);
			total[v2].push_back(r.rep.downtime_ms);
			busy[v2].push_back(r.busy_ms);
			expected[v2].push_back(r.rep.expected_downtime_ms);
			jruns.push_back({{"protocol", proto},
					 {"run", run},
					 {"total_ms", r.rep.downtime_ms},
					 {"busy_ms", r.busy_ms},
					 {"expected_ms", r.rep.expected_downtime_ms},
					 {"busy_expected_ms", r.busy_expected_ms},
					 {"precopy_ms", r.rep.precopy_ms},
					 {"iterations", r.rep.iterations},
					 {"acks", r.rep.acks_sent},
					 {"reinits", reinits},
					 {"bandwidth_mb_s", r.rep.bandwidth_bytes_per_s / 1e6},
					 {"digests_match", match}});
		}
	}
	double t1 = median(total[0]), t2 = median(total[1]);
	double b1 = median(busy[0]), b2 = median(busy[1]);
	double e1 = median(expected[0]), e2 = median(expected[1]);
	std::printf("\n  median      total ms   busy ms   expected ms   actual/expected\n");
	std::printf("  v1         %9.1f %9.1f %13.1f %17.1fx\n", t1, b1, e1, e1 > 0 ? t1 / e1 : 0);
	std::printf("  v2+REINIT  %9.1f %9.1f %13.1f %17.1fx\n", t2, b2, e2, e2 > 0 ? t2 / e2 : 0);
	std::string summary = "total " + pct(t1, t2) + ", busy device " + pct(b1, b2);
	std::printf("  change     %9s %9s\n", pct(t1, t2).c_str(), pct(b1, b2).c_str());
	std::printf("  seeds (mlx5, QEMU): total 2352 -> 1335 ms (-43 %%), busy device 1600 -> 520 ms (-67 %%)\n");
	std::printf("reinit-table: v1 -> v2: %s (medians of %u runs)%s\n", summary.c_str(), f.runs,
		    all_ok ? "" : "; SOME RUNS FAILED");
	if (!json_out.empty()) {
		nlohmann::json j = {{"fixture", f.name},
				    {"runs", jruns},
				    {"median", {{"v1", {{"total_ms", t1}, {"busy_ms", b1}, {"expected_ms", e1}}},
						{"v2", {{"total_ms", t2}, {"busy_ms", b2}, {"expected_ms", e2}}}}},
				    {"summary", summary},
				    {"ok", all_ok}};
		std::ofstream(json_out) << j.dump(2) << "\n";
	}
	return all_ok ? 0 : 1;
}

} // namespace

ReinitTable::ReinitTable(CLI::App &app)
{
	cmd_ = app.add_subcommand("reinit-table",
				  "The seeds' downtime experiment: one busy device reconfiguring during precopy plus "
				  "idle ones, migrated with v1 and with v2 (REINIT + per-device switchover-ack); "
				  "prints total downtime, the busy device's share, expected vs actual");
	cmd_->add_option("-f,--fixture", fixture_, "Fixture (JSON) defining the setup and cost model")
		->capture_default_str();
	cmd_->add_option("--runs", runs_, "Runs per protocol (default: the fixture's)");
	cmd_->add_option("--json", json_out_, "Also write the results as JSON to this file");
}

bool ReinitTable::run(int *rc)
{
	if (!*cmd_)
		return false;
	try {
		Fixture f = load_fixture(fixture_);
		if (runs_ > 0)
			f.runs = static_cast<unsigned>(runs_);
		*rc = run_table(f, json_out_);
	} catch (const std::exception &e) {
		std::fprintf(stderr, "vfio-migctl reinit-table: %s\n", e.what());
		*rc = 1;
	}
	return true;
}

} // namespace migctl
