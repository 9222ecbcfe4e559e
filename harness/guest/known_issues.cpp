// Reading fixtures/known-issues/<driver>.tsv (see known_issues.hpp).
#include "known_issues.hpp"

#include <filesystem>
#include <fnmatch.h>
#include <fstream>
#include <sstream>

namespace vfiomig::test {

namespace {

std::vector<std::string_view> split_tabs(std::string_view s)
{
	std::vector<std::string_view> out;
	for (;;) {
		auto pos = s.find('\t');
		out.push_back(s.substr(0, pos));
		if (pos == std::string_view::npos)
			return out;
		s.remove_prefix(pos + 1);
	}
}

} // namespace

std::vector<KnownIssue> parse_known_issues(std::string_view text, const std::string &source)
{
	std::vector<KnownIssue> out;
	std::string problems;
	bool header = false;
	int line = 0;
	while (!text.empty()) {
		line++;
		auto nl = text.find('\n');
		std::string_view l = text.substr(0, nl);
		text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
		if (!l.empty() && l.back() == '\r')
			l.remove_suffix(1);
		if (l.empty() || l.front() == '#')
			continue;
		std::string where = source + ":" + std::to_string(line) + ": ";
		if (!header) {
			if (l != kKnownIssuesHeader)
				problems += where + "expected the header '" + std::string(kKnownIssuesHeader) +
					    "' (tab-separated) before the first issue\n";
			header = true;
			continue;
		}
		auto cols = split_tabs(l);
		if (cols.size() != 3) {
			problems += where + "expected 3 tab-separated columns (test, symptom, reason), found " +
				    std::to_string(cols.size()) + "\n";
			continue;
		}
		static const char *const kColumn[] = {"test", "symptom", "reason"};
		bool empty = false;
		for (std::size_t i = 0; i < 3; i++) {
			if (cols[i].empty()) {
				problems += where + "empty " + kColumn[i] + " column\n";
				empty = true;
			}
		}
		if (empty)
			continue;
		if (cols[0].find('.') == std::string_view::npos) {
			problems += where + "test '" + std::string(cols[0]) + "' is not Suite.Test (a pattern, * allowed)\n";
			continue;
		}
		out.push_back({source + ":" + std::to_string(line), std::string(cols[0]), std::string(cols[1]),
			       std::string(cols[2])});
	}
	if (!header)
		problems += source + ": no header '" + std::string(kKnownIssuesHeader) + "'\n";
	if (!problems.empty())
		throw KnownIssueError(problems);
	return out;
}

std::vector<KnownIssue> load_known_issues(const std::string &dir, const std::string &driver)
{
	namespace fs = std::filesystem;
	std::error_code ec;
	for (const auto &e : fs::directory_iterator(dir, ec)) {
		if (e.path().extension() != ".tsv")
			continue;
		std::string name = e.path().stem().string();
		bool applies = driver == name ||
			       (driver.size() > name.size() && driver.starts_with(name) &&
				(driver[name.size()] == '-' || driver[name.size()] == '_'));
		if (!applies)
			continue;
		std::ifstream in(e.path());
		std::stringstream ss;
		ss << in.rdbuf();
		if (!in)
			throw KnownIssueError(e.path().string() + ": cannot be read\n");
		return parse_known_issues(ss.str(), e.path().string());
	}
	return {};
}

std::string known_issue_key(std::string_view suite, std::string_view test)
{
	if (auto slash = suite.find('/'); slash != std::string_view::npos)
		suite.remove_prefix(slash + 1);
	return std::string(suite) + "." + std::string(test);
}

std::vector<const KnownIssue *> known_issues_of(const std::vector<KnownIssue> &all, const std::string &key)
{
	std::vector<const KnownIssue *> out;
	for (const KnownIssue &i : all) {
		if (fnmatch(i.test.c_str(), key.c_str(), 0) == 0)
			out.push_back(&i);
	}
	return out;
}

} // namespace vfiomig::test
