// vfio-migtest: the in-guest validation suite. Runs as root where
// vfio_mig_emu is loaded; ends with "vfio-migtest: N passed, N failed, N skipped".
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/utsname.h>

#include "common.hpp"
#include "kmsg_listener.hpp"
#include "report.hpp"

namespace {

constexpr const char *kUsage = R"(usage: vfio-migtest [options] [googletest options]

Validates the VFIO live-migration uAPI on vfio_mig_emu devices (the module
must be loaded; run as root).

output and exit status:
  --ktap               KTAP (kselftest format) on stdout instead of
                       googletest's own output
  --ktap=FILE          KTAP into FILE (both may be given)
  --junit=FILE         JUnit XML report into FILE (alongside any other output)
  --gtest_output=xml:FILE
                       googletest's own XML report
  exit status: 0 every selected test passed (skips allowed), 1 a test failed
  (or the run could not clean up), 4 nothing passed because everything
  selected was skipped or nothing was selected (kselftest's KSFT_SKIP), 2 bad
  options.

splitting a run (CI loops):
  --shard=I/N          run shard I (0-based) of N; the same as
                       GTEST_SHARD_INDEX=I GTEST_TOTAL_SHARDS=N.  Every shard
                       sees the same test list, so the union of N shards is
                       the whole suite; scripts/vm-run --shards N runs them in
                       N guests at once.
  --gtest_filter=PATTERN  run a subset, e.g. '*Fsm*:-*Torture*' (parameterised
                       suites carry a prefix: Profiles/Fsm.*)
  --gtest_list_tests   list the tests and exit

  -h, --help           this text, then googletest's options
)";

struct Options {
	bool ktap_stdout = false;
	std::optional<std::string> ktap_file;
	std::optional<std::string> junit_file;
	bool help = false;
};

[[noreturn]] void usage_error(const std::string &msg)
{
	std::fprintf(stderr, "vfio-migtest: %s (see --help)\n", msg.c_str());
	std::exit(2);
}

// "I/N" -> GTEST_SHARD_INDEX / GTEST_TOTAL_SHARDS, checked like googletest
// would, but with a message that says which option was wrong.
void set_shard(std::string_view spec)
{
	auto slash = spec.find('/');
	if (slash == std::string_view::npos)
		usage_error("--shard wants I/N, e.g. --shard=0/4");
	std::string index(spec.substr(0, slash)), total(spec.substr(slash + 1));
	char *end = nullptr;
	errno = 0;
	long i = std::strtol(index.c_str(), &end, 10);
	bool bad_i = index.empty() || *end || errno;
	long n = std::strtol(total.c_str(), &end, 10);
	bool bad_n = total.empty() || *end || errno;
	if (bad_i || bad_n || n < 1 || i < 0 || i >= n)
		usage_error("--shard=" + std::string(spec) + ": want 0 <= I < N");
	setenv("GTEST_SHARD_INDEX", index.c_str(), 1);
	setenv("GTEST_TOTAL_SHARDS", total.c_str(), 1);
}

// Takes our options out of argv (googletest rejects nothing, but would
// treat them as unknown flags and warn).
Options parse_options(int *argc, char **argv)
{
	Options o;
	int out = 1;
	for (int i = 1; i < *argc; i++) {
		std::string_view a = argv[i];
		if (a == "-h" || a == "--help") {
			std::fputs(kUsage, stdout);
			std::fputs("\n", stdout);
			o.help = true;
			argv[out++] = argv[i]; // googletest adds its own help
		} else if (a == "--ktap") {
			o.ktap_stdout = true;
		} else if (a.starts_with("--ktap=")) {
			o.ktap_file = std::string(a.substr(7));
			if (o.ktap_file->empty())
				usage_error("--ktap= wants a file name");
		} else if (a.starts_with("--junit=")) {
			o.junit_file = std::string(a.substr(8));
			if (o.junit_file->empty())
				usage_error("--junit= wants a file name");
		} else if (a == "--junit") {
			usage_error("--junit wants a file: --junit=FILE");
		} else if (a.starts_with("--shard=")) {
			set_shard(a.substr(8));
		} else if (a == "--shard") {
			usage_error("--shard wants I/N: --shard=I/N");
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	argv[out] = nullptr;
	return o;
}

std::vector<std::pair<std::string, std::string>> run_properties()
{
	std::vector<std::pair<std::string, std::string>> p;
	utsname u{};
	if (uname(&u) == 0)
		p.emplace_back("kernel", u.release);
	for (const char *var : {"GTEST_SHARD_INDEX", "GTEST_TOTAL_SHARDS", "GTEST_FILTER"}) {
		if (const char *v = std::getenv(var))
			p.emplace_back(var, v);
	}
	return p;
}

} // namespace

int main(int argc, char **argv)
{
	Options opt = parse_options(&argc, argv);
	::testing::InitGoogleTest(&argc, argv);
	auto &listeners = ::testing::UnitTest::GetInstance()->listeners();

	// KTAP to a file: opened before any test so a bad path fails fast.
	std::unique_ptr<std::FILE, int (*)(std::FILE *)> ktap_out(nullptr, std::fclose);
	if (opt.ktap_file) {
		ktap_out.reset(std::fopen(opt.ktap_file->c_str(), "w"));
		if (!ktap_out)
			usage_error("--ktap=" + *opt.ktap_file + ": " + std::strerror(errno));
		listeners.Append(new vfiomig::test::KtapPrinter(ktap_out.get()));
	}
	if (opt.ktap_stdout) {
		// stdout carries nothing but KTAP: googletest's printer goes.
		delete listeners.Release(listeners.default_result_printer());
		listeners.Append(new vfiomig::test::KtapPrinter(stdout));
	}
	// Appended after the printers: end events run in reverse order, so the
	// kernel-log check can still fail the test before it is printed.
	listeners.Append(new vfiomig::test::KmsgListener);

	int rc = RUN_ALL_TESTS();
	if (opt.help || GTEST_FLAG_GET(list_tests))
		return rc; // nothing ran, and nothing was meant to
	bool cleanup_failed = false;
	try {
		vfiomig::test::release_pool();
	} catch (const std::exception &e) {
		std::fprintf(stderr, "vfio-migtest: releasing instances: %s\n", e.what());
		cleanup_failed = true;
	}

	const auto results = vfiomig::test::collect_results(*::testing::UnitTest::GetInstance());
	const auto t = vfiomig::test::totals(results);
	if (opt.junit_file) {
		std::ofstream junit(*opt.junit_file);
		junit << vfiomig::test::junit_document("vfio-migtest", results, run_properties());
		if (!junit.flush()) {
			std::fprintf(stderr, "vfio-migtest: writing --junit=%s failed\n", opt.junit_file->c_str());
			cleanup_failed = true;
		}
	}
	// In KTAP-on-stdout mode the summary is a diagnostic line, so the
	// stream stays valid KTAP; scripts look for it either way.
	std::printf("%svfio-migtest: %d passed, %d failed, %d skipped\n", opt.ktap_stdout ? "# " : "",
		    t.passed, t.failed, t.skipped);
	if (rc != 0 && !t.failed)
		cleanup_failed = true; // googletest failed outside any test (e.g. a global set-up)
	if (cleanup_failed)
		return vfiomig::test::kExitFail;
	return vfiomig::test::exit_code(t);
}
