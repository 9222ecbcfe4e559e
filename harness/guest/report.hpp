// Machine-readable results for CI systems: KTAP (the kernel's kselftest
// format) on stdout or a file, and JUnit XML. The formatting is pure and
// host-tested; the listeners only collect what googletest reports.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace vfiomig::test {

enum class Outcome { pass, fail, skip };

struct CaseResult {
	std::string name; ///< "FsmArc.FollowsTheReferencePath/full_STOP_to_RUNNING"
	Outcome outcome = Outcome::pass;
	/// Failure messages or the skip reason, as googletest printed them.
	std::string message;
	double seconds = 0;
};

struct SuiteResult {
	std::string name;
	std::vector<CaseResult> cases;
	/// not ok if a case failed; SKIP if every case skipped.
	Outcome outcome() const;
};

struct Totals {
	int passed = 0, failed = 0, skipped = 0;
};
Totals totals(const std::vector<SuiteResult> &suites);

/// kselftest's exit codes: 0 pass, 1 fail, 4 (KSFT_SKIP) when nothing
/// passed because everything selected was skipped (or nothing was selected).
constexpr int kExitPass = 0;
constexpr int kExitFail = 1;
constexpr int kExitSkip = 4;
int exit_code(const Totals &t);

// --- KTAP v1 (Documentation/dev-tools/ktap.rst) ---
// The header and plan of a document or a subtest; `indent` is the nesting
// depth (4 spaces each).
std::string ktap_header(int indent, const std::string &subtest_name, int planned);
/// "ok 3 name", "not ok 3 name", "ok 3 name # SKIP reason".
std::string ktap_result(int indent, int number, const std::string &name, Outcome o,
			const std::string &reason = {});
/// Each line of `text` as a "# " diagnostic line at `indent`.
std::string ktap_diagnostic(int indent, const std::string &text);
/// kselftest's closing line: "# Totals: pass:N fail:N xfail:0 xpass:0 skip:N error:0".
std::string ktap_totals(const Totals &t);
/// A whole document (what the streaming printer writes, in one piece).
std::string ktap_document(const std::vector<SuiteResult> &suites);

// --- JUnit XML ---
/// Escapes &, <, >, ", ' and drops control characters XML 1.0 forbids.
std::string xml_escape(const std::string &s);
/// <testsuites> with one <testsuite> per suite; <failure> and <skipped>
/// carry the messages. `properties` go into the top element's <properties>.
std::string junit_document(const std::string &name, const std::vector<SuiteResult> &suites,
			   const std::vector<std::pair<std::string, std::string>> &properties = {});

/// The results googletest collected for the tests that were selected.
std::vector<SuiteResult> collect_results(const ::testing::UnitTest &ut);

/// Streams KTAP as tests finish: replaces googletest's own printer when it
/// writes to stdout, so a CI parser sees nothing but KTAP there.
class KtapPrinter : public ::testing::EmptyTestEventListener {
public:
	explicit KtapPrinter(std::FILE *out) : out_(out) {}
	void OnTestProgramStart(const ::testing::UnitTest &ut) override;
	void OnTestSuiteStart(const ::testing::TestSuite &suite) override;
	void OnTestEnd(const ::testing::TestInfo &info) override;
	void OnTestSuiteEnd(const ::testing::TestSuite &suite) override;
	void OnTestProgramEnd(const ::testing::UnitTest &ut) override;

private:
	void emit(const std::string &s);
	std::FILE *out_;
	int suite_number_ = 0;
	int case_number_ = 0;
	SuiteResult current_;
};

} // namespace vfiomig::test
