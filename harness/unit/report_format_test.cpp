// KTAP and JUnit formatting of suite results, and the kselftest exit codes
// a CI loop keys on.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../guest/report.hpp"

namespace vfiomig::test {
namespace {

std::vector<SuiteResult> sample()
{
	return {
		{"Fsm",
		 {{"Fsm.StopToRunning", Outcome::pass, "", 0.5},
		  {"Fsm.PreCopyRefused", Outcome::fail, "fsm.cpp:12: expected EINVAL\ngot success", 0.25}}},
		{"PrecopyInfo", {{"PrecopyInfo.OnlyInPreCopy/stopcopy", Outcome::skip, "profile lacks PRE_COPY\nmore", 0}}},
	};
}

int count(const std::string &hay, const std::string &needle)
{
	int n = 0;
	for (auto pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1))
		n++;
	return n;
}

TEST(ExitCode, FollowsKselftest)
{
	EXPECT_EQ(exit_code({3, 0, 2}), kExitPass);
	EXPECT_EQ(exit_code({3, 1, 2}), kExitFail);
	EXPECT_EQ(exit_code({0, 1, 2}), kExitFail);
	EXPECT_EQ(exit_code({0, 0, 2}), kExitSkip);
	EXPECT_EQ(exit_code({0, 0, 0}), kExitSkip) << "nothing selected is not a pass";
	EXPECT_EQ(kExitSkip, 4);
}

TEST(SuiteOutcome, FailWinsSkipOnlyWhenNothingPassed)
{
	auto s = sample();
	EXPECT_EQ(s[0].outcome(), Outcome::fail);
	EXPECT_EQ(s[1].outcome(), Outcome::skip);
	s[1].cases.push_back({"PrecopyInfo.X", Outcome::pass, "", 0});
	EXPECT_EQ(s[1].outcome(), Outcome::pass);
}

TEST(Ktap, ResultLinesCarryTheDirectiveAndOnlyTheFirstReasonLine)
{
	EXPECT_EQ(ktap_result(0, 3, "A.b", Outcome::pass), "ok 3 A.b\n");
	EXPECT_EQ(ktap_result(1, 4, "A.b", Outcome::fail), "    not ok 4 A.b\n");
	EXPECT_EQ(ktap_result(1, 5, "A.b", Outcome::skip, "no P2P\nsecond"), "    ok 5 A.b # SKIP no P2P\n");
	EXPECT_EQ(ktap_result(0, 1, "A.b#c", Outcome::pass), "ok 1 A.b_c\n")
		<< "a '#' in a name would start a directive";
}

TEST(Ktap, DocumentNestsOneSubtestPerSuiteWithPlansAndTotals)
{
	const std::string doc = ktap_document(sample());
	EXPECT_EQ(doc.rfind("KTAP version 1\n1..2\n", 0), 0U) << doc;
	EXPECT_NE(doc.find("    KTAP version 1\n    # Subtest: Fsm\n    1..2\n"), std::string::npos) << doc;
	EXPECT_NE(doc.find("    # fsm.cpp:12: expected EINVAL\n    # got success\n    not ok 2 Fsm.PreCopyRefused\n"),
		  std::string::npos)
		<< "failure diagnostics precede their result line:\n"
		<< doc;
	EXPECT_NE(doc.find("not ok 1 Fsm\n"), std::string::npos) << doc;
	EXPECT_NE(doc.find("    ok 1 PrecopyInfo.OnlyInPreCopy/stopcopy # SKIP profile lacks PRE_COPY\n"),
		  std::string::npos)
		<< doc;
	EXPECT_NE(doc.find("ok 2 PrecopyInfo # SKIP\n"), std::string::npos) << doc;
	EXPECT_TRUE(doc.ends_with("\n# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0\n")) << doc;
	// Every line at depth 0 is a version, plan, result or diagnostic.
	std::size_t start = 0;
	while (start < doc.size()) {
		auto end = doc.find('\n', start);
		std::string line = doc.substr(start, end - start);
		start = end + 1;
		if (line.starts_with("    "))
			continue;
		EXPECT_TRUE(line.starts_with("KTAP version") || line.starts_with("1..") || line.starts_with("ok ") ||
			    line.starts_with("not ok ") || line.starts_with("#"))
			<< "stray top-level line: " << line;
	}
}

TEST(Xml, EscapesMarkupAndDropsForbiddenControlCharacters)
{
	EXPECT_EQ(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
	EXPECT_EQ(xml_escape(std::string("x\x01y\tz\n", 6)), "xy\tz\n");
}

TEST(Junit, CountsAndElementsMatchTheResults)
{
	const std::string x = junit_document("vfio-migtest", sample(), {{"kernel", "6.12<x>"}});
	EXPECT_NE(x.find("<testsuites name=\"vfio-migtest\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
		  std::string::npos)
		<< x;
	EXPECT_NE(x.find("<property name=\"kernel\" value=\"6.12&lt;x&gt;\"/>"), std::string::npos) << x;
	EXPECT_NE(x.find("<testsuite name=\"Fsm\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" "
			 "time=\"0.750\">"),
		  std::string::npos)
		<< x;
	EXPECT_NE(x.find("<failure message=\"fsm.cpp:12: expected EINVAL\">fsm.cpp:12: expected EINVAL\ngot "
			 "success</failure>"),
		  std::string::npos)
		<< x;
	EXPECT_NE(x.find("<skipped message=\"profile lacks PRE_COPY\"/>"), std::string::npos) << x;
	EXPECT_EQ(count(x, "<testcase "), 3);
	EXPECT_EQ(count(x, "<testsuite "), 2);
	EXPECT_EQ(count(x, "</testsuite>"), 2);
	EXPECT_EQ(count(x, "</testcase>"), 2) << "pass cases are self-closing";
}

} // namespace
} // namespace vfiomig::test
