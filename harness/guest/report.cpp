#include "report.hpp"

#include <fmt/format.h>

#include <sstream>

namespace vfiomig::test {

Outcome SuiteResult::outcome() const
{
	bool any_pass = false;
	for (const auto &c : cases) {
		if (c.outcome == Outcome::fail)
			return Outcome::fail;
		any_pass |= c.outcome == Outcome::pass;
	}
	// An empty suite has nothing that passed: reported as skipped, like a
	// kselftest whose every case was skipped.
	return any_pass ? Outcome::pass : Outcome::skip;
}

Totals totals(const std::vector<SuiteResult> &suites)
{
	Totals t;
	for (const auto &s : suites) {
		for (const auto &c : s.cases) {
			switch (c.outcome) {
			case Outcome::pass:
				t.passed++;
				break;
			case Outcome::fail:
				t.failed++;
				break;
			case Outcome::skip:
				t.skipped++;
				break;
			}
		}
	}
	return t;
}

int exit_code(const Totals &t)
{
	if (t.failed)
		return kExitFail;
	return t.passed ? kExitPass : kExitSkip;
}

namespace {

std::string pad(int indent)
{
	return std::string(static_cast<std::size_t>(indent) * 4, ' ');
}

// KTAP test names end at '#' (the directive separator) and at the line end.
std::string ktap_name(const std::string &name)
{
	std::string out;
	for (char c : name)
		out += (c == '#' || c == '\n' || c == '\r') ? '_' : c;
	return out;
}

std::string first_line(const std::string &s)
{
	auto nl = s.find('\n');
	return nl == std::string::npos ? s : s.substr(0, nl);
}

} // namespace

std::string ktap_header(int indent, const std::string &subtest_name, int planned)
{
	std::string s = pad(indent) + "KTAP version 1\n";
	if (!subtest_name.empty())
		s += pad(indent) + "# Subtest: " + ktap_name(subtest_name) + "\n";
	s += pad(indent) + fmt::format("1..{}\n", planned);
	return s;
}

std::string ktap_result(int indent, int number, const std::string &name, Outcome o, const std::string &reason)
{
	std::string s = pad(indent) + (o == Outcome::fail ? "not ok " : "ok ") + std::to_string(number) + " " +
			ktap_name(name);
	if (o == Outcome::skip) {
		s += " # SKIP";
		std::string why = first_line(reason);
		if (!why.empty())
			s += " " + why;
	}
	return s + "\n";
}

std::string ktap_diagnostic(int indent, const std::string &text)
{
	std::string s;
	std::istringstream in(text);
	for (std::string line; std::getline(in, line);)
		s += pad(indent) + (line.empty() ? "#" : "# " + line) + "\n";
	return s;
}

std::string ktap_totals(const Totals &t)
{
	return fmt::format("# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:0\n", t.passed, t.failed,
			   t.skipped);
}

std::string ktap_document(const std::vector<SuiteResult> &suites)
{
	std::string s = ktap_header(0, {}, static_cast<int>(suites.size()));
	int n = 0;
	for (const auto &suite : suites) {
		s += ktap_header(1, suite.name, static_cast<int>(suite.cases.size()));
		int i = 0;
		for (const auto &c : suite.cases) {
			if (c.outcome == Outcome::fail)
				s += ktap_diagnostic(1, c.message);
			s += ktap_result(1, ++i, c.name, c.outcome, c.message);
		}
		s += ktap_result(0, ++n, suite.name, suite.outcome());
	}
	return s + ktap_totals(totals(suites));
}

std::string xml_escape(const std::string &s)
{
	std::string out;
	out.reserve(s.size());
	for (char ch : s) {
		auto c = static_cast<unsigned char>(ch);
		switch (ch) {
		case '&':
			out += "&amp;";
			break;
		case '<':
			out += "&lt;";
			break;
		case '>':
			out += "&gt;";
			break;
		case '"':
			out += "&quot;";
			break;
		case '\'':
			out += "&apos;";
			break;
		default:
			// XML 1.0 allows no C0 control characters but tab, LF and CR.
			if (c >= 0x20 || ch == '\t' || ch == '\n' || ch == '\r')
				out += ch;
		}
	}
	return out;
}

std::string junit_document(const std::string &name, const std::vector<SuiteResult> &suites,
			   const std::vector<std::pair<std::string, std::string>> &properties)
{
	auto suite_time = [](const SuiteResult &s) {
		double t = 0;
		for (const auto &c : s.cases)
			t += c.seconds;
		return t;
	};
	Totals all = totals(suites);
	double all_time = 0;
	for (const auto &s : suites)
		all_time += suite_time(s);

	std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
	x += fmt::format("<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" "
			 "time=\"{:.3f}\">\n",
			 xml_escape(name), all.passed + all.failed + all.skipped, all.failed, all.skipped, all_time);
	if (!properties.empty()) {
		x += "  <properties>\n";
		for (const auto &[k, v] : properties)
			x += fmt::format("    <property name=\"{}\" value=\"{}\"/>\n", xml_escape(k), xml_escape(v));
		x += "  </properties>\n";
	}
	for (const auto &s : suites) {
		Totals t = totals({s});
		x += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" "
				 "time=\"{:.3f}\">\n",
				 xml_escape(s.name), s.cases.size(), t.failed, t.skipped, suite_time(s));
		for (const auto &c : s.cases) {
			x += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\"", xml_escape(s.name),
					 xml_escape(c.name), c.seconds);
			switch (c.outcome) {
			case Outcome::pass:
				x += "/>\n";
				break;
			case Outcome::fail:
				x += fmt::format(">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
						 xml_escape(first_line(c.message)), xml_escape(c.message));
				break;
			case Outcome::skip:
				x += fmt::format(">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
						 xml_escape(first_line(c.message)));
				break;
			}
		}
		x += "  </testsuite>\n";
	}
	return x + "</testsuites>\n";
}

namespace {

CaseResult case_result(const ::testing::TestInfo &info)
{
	CaseResult c;
	c.name = std::string(info.test_suite_name()) + "." + info.name();
	const auto *r = info.result();
	c.seconds = static_cast<double>(r->elapsed_time()) / 1000.0;
	c.outcome = r->Failed() ? Outcome::fail : r->Skipped() ? Outcome::skip : Outcome::pass;
	for (int i = 0; i < r->total_part_count(); i++) {
		const auto &part = r->GetTestPartResult(i);
		bool wanted = c.outcome == Outcome::fail ? part.failed() : part.skipped();
		if (!wanted)
			continue;
		if (!c.message.empty())
			c.message += "\n";
		if (part.failed() && part.file_name())
			c.message += fmt::format("{}:{}: ", part.file_name(), part.line_number());
		c.message += part.message();
	}
	return c;
}

} // namespace

std::vector<SuiteResult> collect_results(const ::testing::UnitTest &ut)
{
	std::vector<SuiteResult> out;
	for (int i = 0; i < ut.total_test_suite_count(); i++) {
		const auto *suite = ut.GetTestSuite(i);
		if (!suite->should_run())
			continue;
		SuiteResult s{suite->name(), {}};
		for (int j = 0; j < suite->total_test_count(); j++) {
			const auto *t = suite->GetTestInfo(j);
			if (t->should_run())
				s.cases.push_back(case_result(*t));
		}
		out.push_back(std::move(s));
	}
	return out;
}

void KtapPrinter::emit(const std::string &s)
{
	std::fputs(s.c_str(), out_);
	std::fflush(out_);
}

void KtapPrinter::OnTestProgramStart(const ::testing::UnitTest &ut)
{
	int suites = 0;
	for (int i = 0; i < ut.total_test_suite_count(); i++)
		suites += ut.GetTestSuite(i)->should_run();
	emit(ktap_header(0, {}, suites));
}

void KtapPrinter::OnTestSuiteStart(const ::testing::TestSuite &suite)
{
	current_ = SuiteResult{suite.name(), {}};
	case_number_ = 0;
	emit(ktap_header(1, suite.name(), suite.test_to_run_count()));
}

void KtapPrinter::OnTestEnd(const ::testing::TestInfo &info)
{
	CaseResult c = case_result(info);
	std::string s;
	if (c.outcome == Outcome::fail)
		s += ktap_diagnostic(1, c.message);
	s += ktap_result(1, ++case_number_, c.name, c.outcome, c.message);
	emit(s);
	current_.cases.push_back(std::move(c));
}

void KtapPrinter::OnTestSuiteEnd(const ::testing::TestSuite &)
{
	emit(ktap_result(0, ++suite_number_, current_.name, current_.outcome()));
}

void KtapPrinter::OnTestProgramEnd(const ::testing::UnitTest &ut)
{
	emit(ktap_totals(totals(collect_results(ut))));
}

} // namespace vfiomig::test
