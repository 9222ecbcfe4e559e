// vfio-migfuzz: a seeded fuzzer for the emulated migratable vfio device.
// Random valid- and invalid-shaped operations over the whole uAPI surface
// (state changes, data fds, precopy info, device features, regions, reset,
// fd lifetimes, the netlink control plane and malformed netlink), checked
// after every step against a model; on a finding, the shortest failing
// operation list it can find and a command line to reproduce it.
//
// Exit: 0 no finding, 1 finding, 2 usage error or nothing could be run.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "ops.hpp"
#include "runner.hpp"
#include "shrink.hpp"
#include "vfiomig/fd.hpp"
#include "vfiomig/mdev.hpp"

using namespace vfiomig;
using namespace vfiomig::fuzz;

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
	std::uint64_t seed = 0;
	bool seed_given = false;
	std::size_t ops = 10000;
	unsigned threads = 2;
	unsigned devices = 4;
	double progress = 5;
	double shrink_seconds = 300;
	bool no_shrink = false;
	std::string replay;
	std::string save;
	bool quiet = false;
};

/// A list of (thread, op) as a replay file: "# vfio-migfuzz replay",
/// "# devices D", then "THREAD KIND dev a b c d" per line.
void write_replay(const std::string &path, unsigned devices, const std::vector<std::pair<unsigned, Op>> &ops,
		  const std::string &comment)
{
	std::ofstream out(path);
	out << "# vfio-migfuzz replay: " << comment << "\n# devices " << devices << "\n";
	for (const auto &[t, op] : ops)
		out << t << " " << encode(op) << "\n";
	if (!out)
		std::fprintf(stderr, "vfio-migfuzz: cannot write %s\n", path.c_str());
}

bool read_replay(const std::string &path, unsigned *devices, std::vector<std::vector<Op>> *lists, std::string *why)
{
	std::ifstream in(path);
	if (!in) {
		*why = "cannot open " + path;
		return false;
	}
	std::string line;
	std::size_t no = 0;
	while (std::getline(in, line)) {
		no++;
		if (line.rfind("# devices ", 0) == 0) {
			*devices = static_cast<unsigned>(std::stoul(line.substr(10)));
			continue;
		}
		if (line.empty() || line[0] == '#')
			continue;
		std::istringstream ls(line);
		unsigned t;
		std::string rest;
		if (!(ls >> t) || !std::getline(ls, rest)) {
			*why = path + ":" + std::to_string(no) + ": expected THREAD KIND dev a b c d";
			return false;
		}
		auto op = decode(rest);
		if (!op || t > 64) {
			*why = path + ":" + std::to_string(no) + ": not an operation: " + line;
			return false;
		}
		if (lists->size() <= t)
			lists->resize(t + 1);
		(*lists)[t].push_back(*op);
	}
	return true;
}

std::string command_line(const Args &a)
{
	char buf[160];
	std::snprintf(buf, sizeof(buf), "vfio-migfuzz --seed %llu --ops %zu --threads %u --devices %u",
		      static_cast<unsigned long long>(a.seed), a.ops, a.threads, a.devices);
	return buf;
}

void print_steps(const std::vector<Step> &steps, bool threads)
{
	std::size_t i = 0;
	for (const Step &s : steps) {
		std::printf("  %3zu. %s%s%s -> %s\n", i++,
			    threads ? ("[t" + std::to_string(s.thread) + "] ").c_str() : "", describe(s.op).c_str(),
			    s.detail.empty() ? "" : (" (" + s.detail + ")").c_str(), s.result.c_str());
	}
}

void print_finding(const Finding &f)
{
	std::printf("  check:   %s\n  thread %u, operation %zu\n  %s\n", f.check.c_str(), f.thread, f.index,
		    f.message.c_str());
}

int report_run(const RunResult &r, const Args &a, unsigned nthreads)
{
	std::printf("vfio-migfuzz: seed %llu: %zu operations in %.1f s (%.0f ops/s), %u threads, %u devices\n",
		    static_cast<unsigned long long>(a.seed), r.executed, r.seconds,
		    r.seconds > 0 ? r.executed / r.seconds : 0.0, nthreads, a.devices);
	if (!a.quiet) {
		std::printf("  by kind:");
		for (unsigned k = 0; k < kNumOpKinds; k++)
			if (r.per_kind[k])
				std::printf(" %s %zu", op_kind_name(static_cast<OpKind>(k)).c_str(), r.per_kind[k]);
		std::printf("\n");
	}
	return 0;
}

/// Minimizes a failing run and prints the result. Returns false when the
/// finding did not reproduce at all.
bool minimize(const Args &a, const std::vector<std::vector<Op>> &lists, const RunResult &first)
{
	const Finding &f = *first.finding;
	auto deadline = Clock::now() + std::chrono::duration<double>(a.shrink_seconds);
	auto budget = [&] { return Clock::now() < deadline; };
	RunOptions ro;
	ro.devices = a.devices;
	std::size_t replays = 0;
	auto same = [&](const RunResult &r) { return r.finding && r.finding->check == f.check; };
	auto run_quiet = [&](const std::vector<std::vector<Op>> &l) {
		replays++;
		try {
			return run(l, ro);
		} catch (const Error &e) {
			std::fprintf(stderr, "vfio-migfuzz: replay setup failed: %s\n", e.what());
			return RunResult{};
		}
	};

	// The executed prefix, as (thread, op) in the order the steps took effect.
	std::vector<std::pair<unsigned, Op>> prefix;
	std::uint64_t fail_seq = UINT64_MAX;
	for (const Step &s : first.steps)
		if (s.thread == f.thread && s.index == f.index)
			fail_seq = s.seq;
	for (const Step &s : first.steps)
		if (s.seq <= fail_seq)
			prefix.emplace_back(s.thread, s.op);
	if (prefix.empty()) // a teardown finding: everything ran
		for (const Step &s : first.steps)
			prefix.emplace_back(s.thread, s.op);

	bool multi = lists.size() > 1;
	auto split = [&](const std::vector<std::pair<unsigned, Op>> &c) {
		std::vector<std::vector<Op>> l(lists.size());
		for (const auto &[t, op] : c)
			l[t].push_back(op);
		return l;
	};
	auto serial = [&](const std::vector<std::pair<unsigned, Op>> &c) {
		std::vector<std::vector<Op>> l(1);
		for (const auto &p : c)
			l[0].push_back(p.second);
		return l;
	};

	// 1. Serially, in the recorded order: deterministic when it reproduces.
	std::printf("vfio-migfuzz: replaying the %zu-operation prefix on fresh devices%s\n", prefix.size(),
		    multi ? ", serially in the recorded order" : "");
	bool serial_ok = same(run_quiet(serial(prefix)));
	bool concurrent_ok = false;
	int attempts = 1;
	if (!serial_ok && multi) {
		// 2. With the recorded per-thread lists, concurrently, a few times.
		for (int i = 0; i < 5 && !concurrent_ok; i++)
			concurrent_ok = same(run_quiet(split(prefix)));
		attempts = 2;
		std::printf("vfio-migfuzz: serial replay does not reproduce; concurrent replay %s\n",
			    concurrent_ok ? "does" : "does not (timing-dependent)");
	}
	if (!serial_ok && !concurrent_ok) {
		std::printf("vfio-migfuzz: could not reproduce the finding; the recorded steps before it:\n");
		std::vector<Step> tail;
		std::size_t from = first.steps.size() > 40 ? first.steps.size() - 40 : 0;
		tail.assign(first.steps.begin() + static_cast<std::ptrdiff_t>(from), first.steps.end());
		print_steps(tail, multi);
		return false;
	}

	std::size_t before = prefix.size();
	std::function<bool(const std::vector<std::pair<unsigned, Op>> &)> fails;
	if (serial_ok)
		fails = [&](const auto &c) { return same(run_quiet(serial(c))); };
	else
		fails = [&](const auto &c) {
			for (int i = 0; i < attempts; i++)
				if (same(run_quiet(split(c))))
					return true;
			return false;
		};
	ShrinkStats st;
	auto t0 = Clock::now();
	auto minimal = ddmin<std::pair<unsigned, Op>>(prefix, fails, budget, &st);
	double secs = std::chrono::duration<double>(Clock::now() - t0).count();
	std::printf("vfio-migfuzz: minimized %zu -> %zu operations (%zu replays, %.1f s%s)\n", before, minimal.size(),
		    st.tries, secs, st.exhausted ? ", stopped by --shrink-seconds" : "");

	// Final run of the minimized list, recorded, for the readable lines.
	RunOptions rec = ro;
	rec.record = true;
	RunResult last;
	try {
		last = run(serial_ok ? serial(minimal) : split(minimal), rec);
	} catch (const Error &e) {
		std::fprintf(stderr, "vfio-migfuzz: %s\n", e.what());
	}
	std::printf("vfio-migfuzz: minimized sequence (%s):\n", serial_ok ? "one thread" : "concurrent threads");
	print_steps(last.steps, !serial_ok);
	if (last.finding) {
		std::printf("vfio-migfuzz: it fails with:\n");
		print_finding(*last.finding);
	} else {
		std::printf("vfio-migfuzz: (this last replay did not fail: the finding is timing-dependent)\n");
	}

	std::string save = a.save;
	if (save.empty()) {
		const char *dir = std::getenv("VM_RESULTS");
		save = std::string(dir ? dir : "/tmp") + "/vfio-migfuzz-" + std::to_string(a.seed) + ".ops";
	}
	std::vector<std::pair<unsigned, Op>> out = minimal;
	if (serial_ok)
		for (auto &p : out)
			p.first = 0;
	write_replay(save, a.devices, out, "seed " + std::to_string(a.seed) + ", " + f.check);
	std::printf("reproduce: %s\n", command_line(a).c_str());
	std::printf("replay the minimized sequence: vfio-migfuzz --replay %s\n", save.c_str());
	return true;
}

} // namespace

int main(int argc, char **argv)
{
	Args a;
	CLI::App app{"vfio-migfuzz: seeded fuzzer for the vfio_mig_emu device (random valid and invalid operations "
		     "over several threads and devices, checked after every step against a model; on a finding, "
		     "a minimized operation sequence and the command line to reproduce it).\n"
		     "Needs the vfio_mig_emu module loaded (run it in the guest). Exit status: 0 no finding, "
		     "1 finding, 2 usage error or no run possible."};
	// scripts/guest-fuzz passes defaults first: later options win.
	app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
	app.add_option("--seed", a.seed, "run seed (default: random, printed); each thread draws its own "
					   "splitmix64 stream from it");
	app.add_option("--ops", a.ops, "operations in total, split over the threads")->capture_default_str();
	app.add_option("--threads", a.threads, "threads; devices are shared between them")
		->check(CLI::Range(1u, 64u))
		->capture_default_str();
	app.add_option("--devices", a.devices, "mdev instances, profiles in turn: full, stopcopy, p2p, precopy")
		->check(CLI::Range(1u, 64u))
		->capture_default_str();
	app.add_option("--progress", a.progress, "seconds between progress lines (0: none)")->capture_default_str();
	app.add_option("--shrink-seconds", a.shrink_seconds, "time limit for minimizing a finding")
		->capture_default_str();
	app.add_flag("--no-shrink", a.no_shrink, "report a finding without minimizing it");
	app.add_option("--replay", a.replay, "run the operations of a replay file (written on a finding) instead "
					     "of generating them");
	app.add_option("--save", a.save, "where to write the minimized sequence (default $VM_RESULTS or /tmp, "
					 "vfio-migfuzz-SEED.ops)");
	app.add_flag("-q,--quiet", a.quiet, "no per-kind summary");
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		int rc = app.exit(e);
		return e.get_exit_code() == 0 ? rc : 2;
	}
	a.seed_given = app.count("--seed") > 0;
	if (!a.seed_given)
		a.seed = std::random_device{}() * 0x100000000ULL + std::random_device{}();

	if (!module_loaded()) {
		std::fprintf(stderr, "vfio-migfuzz: the vfio_mig_emu module is not loaded (%s missing)\n",
			     mdev_parent_path().c_str());
		return 2;
	}

	std::vector<std::vector<Op>> lists;
	if (!a.replay.empty()) {
		std::string why;
		if (!read_replay(a.replay, &a.devices, &lists, &why)) {
			std::fprintf(stderr, "vfio-migfuzz: %s\n", why.c_str());
			return 2;
		}
		a.ops = 0;
		for (auto &l : lists)
			a.ops += l.size();
		a.threads = static_cast<unsigned>(lists.size());
	} else {
		for (unsigned t = 0; t < a.threads; t++)
			lists.push_back(generate_ops(a.seed, t, ops_for_thread(a.ops, a.threads, t), a.devices));
	}
	std::printf("vfio-migfuzz: seed %llu, %zu operations, %u threads, %u devices%s\n",
		    static_cast<unsigned long long>(a.seed), a.ops, a.threads, a.devices,
		    a.replay.empty() ? "" : (", replaying " + a.replay).c_str());
	std::fflush(stdout);

	RunOptions ro;
	ro.devices = a.devices;
	ro.record = true;
	ro.progress_seconds = a.progress;
	ro.label = "vfio-migfuzz";
	RunResult r;
	try {
		r = run(lists, ro);
	} catch (const Error &e) {
		std::fprintf(stderr, "vfio-migfuzz: setting up the devices: %s\n", e.what());
		return 2;
	}
	report_run(r, a, static_cast<unsigned>(lists.size()));
	if (!r.finding) {
		std::printf("vfio-migfuzz: no finding\n");
		return 0;
	}
	std::printf("vfio-migfuzz: FINDING with seed %llu\n", static_cast<unsigned long long>(a.seed));
	print_finding(*r.finding);
	if (r.finding->check == "setup") {
		std::printf("vfio-migfuzz: this is a set-up problem, not a device finding\n");
		return 2;
	}
	if (a.no_shrink) {
		std::printf("reproduce: %s\n", command_line(a).c_str());
		return 1;
	}
	std::fflush(stdout);
	minimize(a, lists, r);
	return 1;
}
