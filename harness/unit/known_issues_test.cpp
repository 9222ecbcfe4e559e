// Known-issue files (fixtures/known-issues/*.tsv): parsing, which file
// applies to which driver, and which tests a pattern covers; plus the
// project's own files, which must parse.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "../guest/known_issues.hpp"

namespace vfiomig::test {
namespace {

std::string file(const std::string &rows)
{
	return "# a comment\n\n" + std::string(kKnownIssuesHeader) + "\n" + rows;
}

std::string problems(const std::string &text)
{
	try {
		parse_known_issues(text, "k.tsv");
	} catch (const KnownIssueError &e) {
		return e.what();
	}
	return "";
}

TEST(KnownIssues, ParsesRowsWithTheirSource)
{
	auto v = parse_known_issues(file("DataFdEnd.X/target\tgave eof\tmtty returns 0\n"
					 "IoctlMatrix.Cell/read__*\tENOMSG\twhy\n"),
				    "k.tsv");
	ASSERT_EQ(v.size(), 2u);
	EXPECT_EQ(v[0].source, "k.tsv:4");
	EXPECT_EQ(v[0].test, "DataFdEnd.X/target");
	EXPECT_EQ(v[0].symptom, "gave eof");
	EXPECT_EQ(v[1].reason, "why");
}

TEST(KnownIssues, RefusesMalformedRowsNamingTheLine)
{
	EXPECT_NE(problems("A.b\tx\ty\n").find("k.tsv:1: expected the header"), std::string::npos);
	EXPECT_NE(problems(file("A.b\tx\n")).find("k.tsv:4: expected 3 tab-separated columns"), std::string::npos);
	EXPECT_NE(problems(file("A.b\t\ty\n")).find("empty symptom column"), std::string::npos);
	EXPECT_NE(problems(file("nodot\tx\ty\n")).find("is not Suite.Test"), std::string::npos);
	EXPECT_NE(problems("# only a comment\n").find("no header"), std::string::npos);
	EXPECT_EQ(problems(file("")), "");
}

TEST(KnownIssues, KeyDropsTheInstantiationPrefix)
{
	EXPECT_EQ(known_issue_key("Profiles/DataFdEnd", "X/target"), "DataFdEnd.X/target");
	EXPECT_EQ(known_issue_key("IoctlMatrix", "Cell/read__in_pre_copy_target"), "IoctlMatrix.Cell/read__in_pre_copy_target");
}

TEST(KnownIssues, PatternsMatchWholeNames)
{
	auto v = parse_known_issues(file("IoctlMatrix.Cell/read__*_target\ts\tr\nDataFdEnd.X/target\ts\tr\n"), "k");
	EXPECT_EQ(known_issues_of(v, "IoctlMatrix.Cell/read__at_temporary_end_target").size(), 1u);
	EXPECT_EQ(known_issues_of(v, "IoctlMatrix.Cell/write__in_resuming_target").size(), 0u);
	EXPECT_EQ(known_issues_of(v, "DataFdEnd.X/target").size(), 1u);
	EXPECT_EQ(known_issues_of(v, "DataFdEnd.XY/target").size(), 0u) << "a pattern is not a prefix";
}

TEST(KnownIssues, FileAppliesToTheDriverAndItsTypes)
{
	namespace fs = std::filesystem;
	fs::path dir = fs::temp_directory_path() / ("vfiomig-known-" + std::to_string(getpid()));
	fs::create_directories(dir);
	std::ofstream(dir / "mtty.tsv") << file("A.b\ts\tr\n");
	std::ofstream(dir / "mlx5_vfio_pci.tsv") << file("C.d\ts\tr\n");
	EXPECT_EQ(load_known_issues(dir.string(), "mtty-2").size(), 1u);
	EXPECT_EQ(load_known_issues(dir.string(), "mtty").size(), 1u);
	EXPECT_EQ(load_known_issues(dir.string(), "mttyx").size(), 0u);
	EXPECT_EQ(load_known_issues(dir.string(), "mlx5_vfio_pci").size(), 1u);
	EXPECT_EQ(load_known_issues(dir.string(), "vfio-pci").size(), 0u);
	fs::remove_all(dir);
}

TEST(KnownIssues, TheProjectsFilesParse)
{
	namespace fs = std::filesystem;
	fs::path dir = fs::path(VFIOMIG_SOURCE_DIR) / "fixtures" / "known-issues";
	int files = 0;
	for (const auto &e : fs::directory_iterator(dir)) {
		std::ifstream in(e.path());
		std::stringstream text;
		text << in.rdbuf();
		EXPECT_NO_THROW(parse_known_issues(text.str(), e.path().string())) << e.path();
		files++;
	}
	EXPECT_GE(files, 1);
}

} // namespace
} // namespace vfiomig::test
