// vfio-migtest --quirk-check: the suite's mutation score against the
// module's seeded driver bugs (quirks, kmod/README.md "Seeded driver bugs").
// The suite runs once with no quirk (it must pass), then once per quirk
// with only that quirk on module-wide; a quirk is caught when a test fails,
// the run crashes or it hangs past the timeout. Each run is this binary
// re-executed as a child, so a crash or hang of one run cannot take the
// runner with it.
#include "quirk_check.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kmsg_listener.hpp"
#include "vfiomig/control.hpp"
#include "vfiomig/fd.hpp"

namespace vfiomig::test {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
	std::string results = "/tmp";
	std::string module;          ///< .ko to reload between runs; empty: no reload
	double timeout = 0;          ///< per run, seconds; 0: from the baseline
	std::vector<unsigned> only;  ///< quirks to check; empty: all
	std::vector<std::string> passthrough; ///< arguments for the children
};

const char kUsage[] =
	"usage: vfio-migtest --quirk-check [--quirk-results=DIR] [--quirk-module=KO]\n"
	"                    [--quirk-timeout=SEC] [--quirk-only=NAME,...] [gtest options]\n"
	"\n"
	"With vfio_mig_emu loaded: run the suite with no quirk (must pass), then once\n"
	"per seeded driver bug with only that quirk on (module-global), and report\n"
	"which tests caught each one and the mutation score (caught/seeded). A run\n"
	"that crashes, or hangs past the timeout, has caught its quirk too.\n"
	"\n"
	"  --quirk-results=DIR  where the per-run logs and XML and quirk-check.json go\n"
	"                       (default $VM_RESULTS, else /tmp)\n"
	"  --quirk-module=KO    rmmod and insmod this module before every run, so no\n"
	"                       run inherits what an earlier quirk left behind\n"
	"  --quirk-timeout=SEC  time for one run (default 2 x the baseline, >= 120 s)\n"
	"  --quirk-only=LIST    check only these quirks (names or bit numbers)\n"
	"  other options        passed to every run (e.g. --gtest_filter=...)\n"
	"\n"
	"Exit status: 0 when the baseline passes and every quirk is caught.\n";

bool starts_with(const std::string &s, const char *prefix) { return s.rfind(prefix, 0) == 0; }

Options parse(int argc, char **argv)
{
	Options o;
	if (const char *r = std::getenv("VM_RESULTS"))
		o.results = r;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--quirk-check")
			continue;
		if (a == "--help" || a == "-h") {
			std::fputs(kUsage, stdout);
			std::exit(0);
		} else if (starts_with(a, "--quirk-results=")) {
			o.results = a.substr(16);
		} else if (starts_with(a, "--quirk-module=")) {
			o.module = a.substr(15);
		} else if (starts_with(a, "--quirk-timeout=")) {
			o.timeout = std::atof(a.c_str() + 16);
		} else if (starts_with(a, "--quirk-only=")) {
			std::stringstream ss(a.substr(13));
			std::string name;
			while (std::getline(ss, name, ',')) {
				auto q = control::parse_quirk(name);
				if (!q) {
					std::fprintf(stderr, "vfio-migtest: no quirk '%s'\n", name.c_str());
					std::exit(2);
				}
				o.only.push_back(*q);
			}
		} else if (starts_with(a, "--quirk")) {
			std::fprintf(stderr, "vfio-migtest: unknown option %s\n%s", a.c_str(), kUsage);
			std::exit(2);
		} else if (starts_with(a, "--gtest_output")) {
			continue; // each run writes its own report
		} else {
			o.passthrough.push_back(a);
		}
	}
	return o;
}

/// One child run's outcome.
struct Run {
	std::string label;
	std::uint64_t mask = 0;
	double seconds = 0;
	int exit_code = -1;  ///< exit status, or -1
	int signal = 0;      ///< killing signal, or 0
	bool timed_out = false;
	bool report = false; ///< the XML report was written
	int tests = 0;
	std::vector<std::string> failed; ///< Suite.Test of failed tests
	std::vector<std::string> kernel; ///< bad kernel log lines seen meanwhile
	std::string hung_in;             ///< the test running when the timeout hit

	bool clean() const { return !timed_out && !signal && exit_code == 0 && failed.empty() && report; }
	std::string verdict() const
	{
		if (timed_out)
			return "hang" + (hung_in.empty() ? std::string() : " in " + hung_in);
		if (signal)
			return std::string("crash (") + strsignal(signal) + ")";
		if (!failed.empty())
			return "tests failed";
		if (!report)
			return "no report (exit " + std::to_string(exit_code) + ")";
		if (exit_code)
			return "exit " + std::to_string(exit_code);
		return "passed";
	}
};

/// The value of attribute `name` in the XML start tag `tag`.
std::string xml_attr(const std::string &tag, const char *name)
{
	std::string key = std::string(" ") + name + "=\"";
	auto p = tag.find(key);
	if (p == std::string::npos)
		return {};
	p += key.size();
	return tag.substr(p, tag.find('"', p) - p);
}

/// Test cases of a gtest XML report and those of them that failed.
void parse_report(const std::string &path, Run *r)
{
	std::ifstream in(path);
	if (!in)
		return;
	std::stringstream ss;
	ss << in.rdbuf();
	std::string xml = ss.str();
	r->report = xml.find("</testsuites>") != std::string::npos;
	std::size_t pos = 0;
	while ((pos = xml.find("<testcase ", pos)) != std::string::npos) {
		std::size_t end = xml.find('>', pos);
		if (end == std::string::npos)
			break;
		std::string tag = xml.substr(pos, end - pos + 1);
		bool self_closed = tag.size() >= 2 && tag[tag.size() - 2] == '/';
		std::size_t body_end = self_closed ? end : xml.find("</testcase>", end);
		if (body_end == std::string::npos)
			body_end = xml.size();
		pos = body_end;
		if (xml_attr(tag, "result") == "suppressed" || xml_attr(tag, "status") == "notrun")
			continue;
		r->tests++;
		if (!self_closed && xml.substr(end, body_end - end).find("<failure") != std::string::npos)
			r->failed.push_back(xml_attr(tag, "classname") + "." + xml_attr(tag, "name"));
	}
}

/// The kernel log from "now" on, for the bad patterns the suite checks.
class KmsgWatch {
public:
	KmsgWatch()
	{
		auto fd = Fd::try_open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
		if (fd.ok()) {
			fd_ = std::move(fd.value());
			lseek(fd_.get(), 0, SEEK_END);
		}
	}
	std::vector<std::string> bad_lines()
	{
		std::vector<std::string> out;
		if (!fd_)
			return out;
		char buf[8192];
		for (;;) {
			ssize_t n = read(fd_.get(), buf, sizeof(buf) - 1);
			if (n < 0 && errno == EPIPE)
				continue; // overwritten records: go on with the next
			if (n <= 0)
				break;
			std::string line(buf, static_cast<std::size_t>(n));
			if (auto semi = line.find(';'); semi != std::string::npos)
				line = line.substr(semi + 1);
			while (!line.empty() && line.back() == '\n')
				line.pop_back();
			if (kmsg_bad_pattern(line) && out.size() < 20)
				out.push_back(line);
		}
		return out;
	}

private:
	Fd fd_;
};

/// Runs this binary as the suite, its output to `<results>/<label>.log`.
Run run_suite(const Options &o, const std::string &label, std::uint64_t mask, double timeout)
{
	Run r;
	r.label = label;
	r.mask = mask;
	std::string xml = o.results + "/quirk-" + label + ".xml";
	std::string log = o.results + "/quirk-" + label + ".log";
	unlink(xml.c_str());

	// Not --gtest_brief: the last "[ RUN      ]" line names a test that hangs.
	std::vector<std::string> args = {"/proc/self/exe", "--gtest_output=xml:" + xml};
	args.insert(args.end(), o.passthrough.begin(), o.passthrough.end());
	std::vector<char *> argv;
	for (auto &a : args)
		argv.push_back(a.data());
	argv.push_back(nullptr);

	KmsgWatch kmsg;
	auto start = Clock::now();
	std::fflush(nullptr);
	pid_t pid = fork();
	if (pid < 0)
		throw Error(errno, "fork");
	if (pid == 0) {
		// Its own process group, so a hang is killed with all it started.
		setpgid(0, 0);
		int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		setenv("GTEST_COLOR", "no", 1);
		execv("/proc/self/exe", argv.data());
		_exit(127);
	}
	setpgid(pid, pid);
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			throw Error(errno, "waitpid");
		if (std::chrono::duration<double>(Clock::now() - start).count() > timeout) {
			r.timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
	}
	r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
	if (!r.timed_out) {
		if (WIFEXITED(status))
			r.exit_code = WEXITSTATUS(status);
		else if (WIFSIGNALED(status))
			r.signal = WTERMSIG(status);
	}
	parse_report(xml, &r);
	r.kernel = kmsg.bad_lines();
	if (r.timed_out || r.signal) {
		// The report is not written then: the last test started is the culprit.
		std::ifstream in(log);
		for (std::string line; std::getline(in, line);)
			if (starts_with(line, "[ RUN      ] "))
				r.hung_in = line.substr(13);
		if (!r.hung_in.empty() && r.failed.empty())
			r.failed.push_back(r.hung_in);
	}
	return r;
}

int run_command(const std::vector<std::string> &cmd)
{
	std::string line;
	for (const auto &c : cmd)
		line += (line.empty() ? "" : " ") + c;
	line += " >/dev/null 2>&1";
	return std::system(line.c_str());
}

/// rmmod + insmod: a fresh module (no quirk, no instance) for the next run.
bool reload_module(const Options &o)
{
	if (o.module.empty())
		return true;
	for (int i = 0; i < 50; i++) {
		if (run_command({"rmmod", "vfio_mig_emu"}) == 0)
			break;
		// A killed run's files may still be closing.
		std::this_thread::sleep_for(std::chrono::milliseconds(200));
	}
	if (access("/sys/module/vfio_mig_emu", F_OK) == 0) {
		std::fprintf(stderr, "vfio-migtest: quirk-check: rmmod vfio_mig_emu failed: something still holds it\n");
		return false;
	}
	if (run_command({"insmod", o.module}) != 0) {
		std::fprintf(stderr, "vfio-migtest: quirk-check: insmod %s failed\n", o.module.c_str());
		return false;
	}
	return true;
}

bool set_global(std::uint64_t mask)
{
	try {
		auto c = control::Client::open();
		if (c.set_quirks(mask) != mask)
			throw Error(EPROTO, "QUIRKS_SET: the kernel reports another mask");
		return true;
	} catch (const std::exception &e) {
		std::fprintf(stderr, "vfio-migtest: quirk-check: setting quirks %s: %s\n",
			     control::describe_quirks(mask).c_str(), e.what());
		return false;
	}
}

std::string first_names(const std::vector<std::string> &names, std::size_t n)
{
	std::string s;
	for (std::size_t i = 0; i < names.size() && i < n; i++)
		s += (i ? ", " : "") + names[i];
	if (names.size() > n)
		s += ", ...";
	return s;
}

nlohmann::json run_json(const Run &r)
{
	return {{"label", r.label},
		{"mask", r.mask},
		{"seconds", r.seconds},
		{"verdict", r.verdict()},
		{"exit_code", r.exit_code},
		{"signal", r.signal},
		{"timed_out", r.timed_out},
		{"tests", r.tests},
		{"failed", r.failed},
		{"kernel_reports", r.kernel},
		{"hung_in", r.hung_in}};
}

} // namespace

bool is_quirk_check(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (std::strcmp(argv[i], "--quirk-check") == 0)
			return true;
	return false;
}

int quirk_check_main(int argc, char **argv)
{
	Options o = parse(argc, argv);
	mkdir(o.results.c_str(), 0755);
	auto t0 = Clock::now();
	bool kernel_bad = false;

	if (!reload_module(o) || !set_global(0))
		return 1;
	std::printf("quirk-check: baseline (no quirk) ...\n");
	Run base = run_suite(o, "baseline", 0, o.timeout > 0 ? o.timeout : 1800);
	std::printf("quirk-check: baseline: %s, %d tests, %zu failed, %.0f s\n", base.verdict().c_str(), base.tests,
		    base.failed.size(), base.seconds);
	nlohmann::json out = {{"baseline", run_json(base)}, {"quirks", nlohmann::json::array()}};
	if (!base.clean() || !base.kernel.empty() || base.tests == 0) {
		for (const auto &t : base.failed)
			std::printf("  failed: %s\n", t.c_str());
		for (const auto &k : base.kernel)
			std::printf("  kernel: %s\n", k.c_str());
		std::printf("quirk-check: the baseline must pass before quirks mean anything (log: %s/quirk-baseline.log)\n",
			    o.results.c_str());
		std::ofstream(o.results + "/quirk-check.json") << out.dump(2) << "\n";
		return 1;
	}
	// A quirk run takes about as long as the baseline; a hang costs the
	// whole timeout, so keep it short.
	double timeout = o.timeout > 0 ? o.timeout : std::max(120.0, 2 * base.seconds);

	std::vector<unsigned> quirks = o.only;
	if (quirks.empty())
		for (unsigned q = 0; q < control::kQuirkCount; q++)
			quirks.push_back(q);

	std::vector<Run> runs;
	for (unsigned q : quirks) {
		std::string name = control::quirk_name(q);
		std::uint64_t mask = std::uint64_t{1} << q;
		if (!reload_module(o) || !set_global(mask))
			return 1;
		std::printf("quirk-check: %-24s ...", name.c_str());
		std::fflush(stdout);
		Run r = run_suite(o, name, mask, timeout);
		// Off again at once (without --quirk-module, the only clean-up).
		if (o.module.empty() && !set_global(0))
			return 1;
		std::printf(" %s, %zu failed, %.0f s\n", r.verdict().c_str(), r.failed.size(), r.seconds);
		if (!r.kernel.empty()) {
			kernel_bad = true;
			for (const auto &k : r.kernel)
				std::printf("  KERNEL REPORT with %s on: %s\n", name.c_str(), k.c_str());
		}
		nlohmann::json j = run_json(r);
		j.update({{"name", name}, {"bit", q}, {"imitates", control::quirk_description(q)},
			  {"caught", !r.clean()}});
		out["quirks"].push_back(std::move(j));
		runs.push_back(std::move(r));
	}
	reload_module(o);
	set_global(0);

	int caught = 0;
	std::printf("\n%-24s %-14s %s\n", "quirk", "verdict", "caught by");
	for (const Run &r : runs) {
		bool c = !r.clean();
		caught += c;
		std::string by = r.failed.empty() ? (c ? r.verdict() : "NOT CAUGHT")
						   : std::to_string(r.failed.size()) + ": " + first_names(r.failed, 3);
		if (r.timed_out && !r.failed.empty())
			by += " (then hung)";
		std::printf("%-24s %-14s %s\n", r.label.c_str(), c ? "caught" : "MISSED", by.c_str());
	}
	double total = std::chrono::duration<double>(Clock::now() - t0).count();
	std::printf("\nmutation score: %d/%zu\n", caught, runs.size());
	std::printf("quirk-check: took %.0f s (baseline %.0f s, run timeout %.0f s); results in %s/quirk-check.json\n",
		    total, base.seconds, timeout, o.results.c_str());
	if (kernel_bad)
		std::printf("quirk-check: a quirk produced a kernel report: the module must stay WARN-free with any quirk\n");
	out["caught"] = caught;
	out["seeded"] = runs.size();
	out["seconds"] = total;
	out["kernel_reports"] = kernel_bad;
	std::ofstream(o.results + "/quirk-check.json") << out.dump(2) << "\n";
	return caught == static_cast<int>(runs.size()) && !kernel_bad ? 0 : 1;
}

} // namespace vfiomig::test
