// Known deviations of foreign drivers, as data: one file per driver under
// fixtures/known-issues/ (mtty.tsv applies to the mdev types mtty-1,
// mtty-2, ...), read at start-up. Pure logic, shared by the guest suite
// and the host unit tests.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vfiomig::test {

/// One known deviation: the tests it shows in, the failure text it gives
/// there, and why it is a deviation (the uAPI text it contradicts).
struct KnownIssue {
	std::string source; ///< file:line, for messages
	std::string test;   ///< fnmatch pattern over "Suite.Test/param" (instantiation prefix dropped)
	std::string symptom; ///< a failure counts as this issue only if its message contains this
	std::string reason;
};

class KnownIssueError : public std::runtime_error {
public:
	explicit KnownIssueError(const std::string &what) : std::runtime_error(what) {}
};

/// The header the file must start with (tab-separated columns).
inline constexpr std::string_view kKnownIssuesHeader = "test\tsymptom\treason";

/// Parses a known-issues file ('#' lines and blank lines ignored; three
/// non-empty tab-separated columns). Throws KnownIssueError listing every
/// problem, each as "source:line: what".
std::vector<KnownIssue> parse_known_issues(std::string_view text, const std::string &source);

/// The known issues of `driver` ("mtty-2", "mlx5_vfio_pci"): the file of
/// `dir` whose name (without .tsv) is the driver's name or a prefix of it
/// followed by '-' or '_'. Empty when there is none.
std::vector<KnownIssue> load_known_issues(const std::string &dir, const std::string &driver);

/// "Suite.Test/param" of a gtest test, its instantiation prefix dropped
/// ("Profiles/DataFdEnd", "X/target" -> "DataFdEnd.X/target").
std::string known_issue_key(std::string_view suite, std::string_view test);

/// The issues whose pattern matches `key`.
std::vector<const KnownIssue *> known_issues_of(const std::vector<KnownIssue> &all, const std::string &key);

} // namespace vfiomig::test
