// The ioctl matrix table parser: malformed rows, duplicate or overlapping cells, unknown names, missing cells.
#include <gtest/gtest.h>

#include <cerrno>
#include <poll.h>

#include "../guest/ioctl_matrix_table.hpp"

namespace vfiomig::matrix {
namespace {

Registry small_registry()
{
	Registry r;
	r.conditions = {"valid", "argsz_too_small", "to_pre_copy"};
	r.conditions_of["mig_state_set"] = {"valid", "to_pre_copy"};
	r.conditions_of["precopy_info"] = {"argsz_too_small"};
	return r;
}

std::string table(const std::string &rows)
{
	return "# a comment\n\n" + std::string(kHeader) + "\n" + rows;
}

const std::string kGood = "mig_state_set\tvalid\tany\tok\tSTOP\tvfio.h: an arc\n"
			  "mig_state_set\tto_pre_copy\tPRE_COPY\tok\tPRE_COPY\tnew fd\n"
			  "mig_state_set\tto_pre_copy\t!PRE_COPY\tEINVAL\tsame\toptional state\n"
			  "precopy_info\targsz_too_small\tPRE_COPY+P2P\tEINVAL|ENODEV\tsame\targsz < 24\n";

/// The problems parse_table reports (empty when it accepts the table).
std::string problems(const std::string &text, const Registry &reg = small_registry())
{
	try {
		parse_table(text, "t.tsv", reg);
	} catch (const TableError &e) {
		return e.what();
	}
	return "";
}

TEST(IoctlMatrixTable, ParsesEveryColumn)
{
	auto rows = parse_table(table(kGood), "t.tsv", small_registry());
	ASSERT_EQ(rows.size(), 4u);
	EXPECT_EQ(rows[0].line, 4);
	EXPECT_EQ(rows[0].name, "mig_state_set__valid");
	EXPECT_EQ(rows[0].after.kind, After::InState);
	EXPECT_EQ(rows[0].after.state, State::Stop);
	EXPECT_EQ(rows[1].name, "mig_state_set__to_pre_copy__pre_copy") << "several rows of one cell: requirement in the name";
	EXPECT_EQ(rows[2].name, "mig_state_set__to_pre_copy__no_pre_copy");
	EXPECT_EQ(rows[2].after.kind, After::Same);
	EXPECT_EQ(rows[3].needs.text(), "PRE_COPY+P2P");
	EXPECT_EQ(rows[3].expected.text(), "EINVAL|ENODEV");
	EXPECT_EQ(rows[3].rule, "argsz < 24");
}

TEST(IoctlMatrixTable, RequirementsHoldOnlyForMatchingDevices)
{
	auto rows = parse_table(table(kGood), "t.tsv", small_registry());
	Target stopcopy{kMigStopCopy};
	Target full{kMigStopCopy | kMigP2P | kMigPreCopy};
	EXPECT_TRUE(rows[0].needs.holds(stopcopy));
	EXPECT_FALSE(rows[1].needs.holds(stopcopy));
	EXPECT_EQ(rows[1].needs.why_not(stopcopy), "lacks PRE_COPY");
	EXPECT_TRUE(rows[2].needs.holds(stopcopy));
	EXPECT_FALSE(rows[2].needs.holds(full));
	EXPECT_EQ(rows[2].needs.why_not(full), "has PRE_COPY");
	EXPECT_TRUE(rows[3].needs.holds(full));
	EXPECT_TRUE(rows[1].needs.disjoint(rows[2].needs));
	EXPECT_FALSE(rows[1].needs.disjoint(rows[3].needs));
}

TEST(IoctlMatrixTable, ExpectationsAdmitOnlyTheirOutcomes)
{
	auto rows = parse_table(table(kGood + "precopy_info\targsz_too_small\t!PRE_COPY\trevents=HUP+ERR\t-\tx\n"),
				"t.tsv", small_registry());
	const Expectation &either = rows[3].expected;
	EXPECT_TRUE(either.admits(Outcome::error(EINVAL)));
	EXPECT_TRUE(either.admits(Outcome::error(ENODEV)));
	EXPECT_FALSE(either.admits(Outcome::error(EFAULT)));
	EXPECT_FALSE(either.admits(Outcome::success()));
	EXPECT_TRUE(either.may_fail());
	const Expectation &ok = rows[0].expected;
	EXPECT_TRUE(ok.admits(Outcome::success()));
	EXPECT_FALSE(ok.admits(Outcome::zero())) << "0 bytes is eof, not ok";
	EXPECT_FALSE(ok.may_fail());
	const Expectation &poll = rows[4].expected;
	EXPECT_TRUE(poll.admits(Outcome::poll(POLLHUP | POLLERR)));
	EXPECT_FALSE(poll.admits(Outcome::poll(POLLHUP))) << "the whole mask must match";
	EXPECT_FALSE(poll.admits(Outcome::success()));
	EXPECT_EQ(rows[4].after.kind, After::Unchecked);
}

TEST(IoctlMatrixTable, RefusesMalformedRows)
{
	EXPECT_NE(problems(table("mig_state_set\tvalid\tany\tok\tSTOP\n")).find("t.tsv:4: expected 6 tab-separated columns"),
		  std::string::npos);
	EXPECT_NE(problems(table("mig_state_set\tvalid\tany\tok\tSTOP\trule\textra\n")).find("found 7"), std::string::npos);
	EXPECT_NE(problems(table("mig_state_set\tvalid\tany\t\tSTOP\trule\n")).find("empty expected column"),
		  std::string::npos);
	EXPECT_NE(problems(table("mig_state_set  valid  any  ok  STOP  spaces, not tabs\n")).find("found 1"),
		  std::string::npos);
	EXPECT_NE(problems("call,condition,requires,expected,after,rule\n").find("t.tsv:1: the first row must be the header"),
		  std::string::npos);
	EXPECT_NE(problems("# only a comment\n").find("no header row"), std::string::npos);
}

TEST(IoctlMatrixTable, RefusesBadColumnValues)
{
	EXPECT_NE(problems(table("mig_state_set\tvalid\tPRECOPY\tok\tSTOP\tx\n")).find("unknown capability 'PRECOPY'"),
		  std::string::npos);
	EXPECT_NE(problems(table("mig_state_set\tvalid\tP2P+!P2P\tok\tSTOP\tx\n")).find("names P2P twice"),
		  std::string::npos);
	EXPECT_NE(problems(table("mig_state_set\tvalid\tany\tEWHAT\tSTOP\tx\n")).find("unknown outcome 'EWHAT'"),
		  std::string::npos);
	EXPECT_NE(problems(table("mig_state_set\tvalid\tany\tok|ok\tSTOP\tx\n")).find("listed twice"), std::string::npos);
	EXPECT_NE(problems(table("mig_state_set\tvalid\tany\trevents=READ\tSTOP\tx\n")).find("unknown poll bit 'READ'"),
		  std::string::npos);
	EXPECT_NE(problems(table("mig_state_set\tvalid\tany\tok\tstop\tx\n")).find("unknown after 'stop'"),
		  std::string::npos)
		<< "state names are written as the uAPI spells them";
}

TEST(IoctlMatrixTable, RefusesUnknownNames)
{
	std::string p = problems(table("mig_state_sett\tvalid\tany\tok\tSTOP\tx\n"
				       "mig_state_set\tvalidd\tany\tok\tSTOP\tx\n"
				       "precopy_info\tvalid\tany\tok\tsame\tx\n"));
	EXPECT_NE(p.find("t.tsv:4: unknown call 'mig_state_sett'"), std::string::npos) << p;
	EXPECT_NE(p.find("t.tsv:5: unknown condition 'validd'"), std::string::npos) << p;
	EXPECT_NE(p.find("t.tsv:6: call 'precopy_info' has no condition 'valid'"), std::string::npos) << p;
}

TEST(IoctlMatrixTable, RefusesDuplicateAndOverlappingCells)
{
	std::string p = problems(table(kGood + "mig_state_set\tvalid\tany\tEINVAL\tsame\tagain\n"));
	EXPECT_NE(p.find("t.tsv:8: duplicate cell mig_state_set x valid (requires any), first at line 4"),
		  std::string::npos)
		<< p;
	p = problems(table(kGood + "mig_state_set\tvalid\tP2P\tok\tSTOP\tnarrower\n"));
	EXPECT_NE(p.find("t.tsv:8: cell mig_state_set x valid (requires P2P) overlaps line 4"), std::string::npos) << p;
	// Negated literals in another order are the same requirement.
	p = problems(table(kGood + "mig_state_set\tto_pre_copy\tP2P+PRE_COPY\tok\tsame\tx\n"
				   "mig_state_set\tto_pre_copy\tPRE_COPY+P2P\tok\tsame\ty\n"));
	EXPECT_NE(p.find("t.tsv:9: duplicate cell mig_state_set x to_pre_copy (requires PRE_COPY+P2P), first at line 8"),
		  std::string::npos)
		<< p;
}

TEST(IoctlMatrixTable, RefusesATableThatLeavesOutAnExecutableCell)
{
	std::string p = problems(table("mig_state_set\tvalid\tany\tok\tSTOP\tx\n"));
	EXPECT_NE(p.find("call 'mig_state_set' x condition 'to_pre_copy' is executable but has no row"), std::string::npos)
		<< p;
	EXPECT_NE(p.find("call 'precopy_info' x condition 'argsz_too_small' is executable but has no row"),
		  std::string::npos)
		<< p;
}

TEST(IoctlMatrixTable, UntestedNeedsNoOtherOutcome)
{
	auto rows = parse_table(table(kGood + "precopy_info\targsz_too_small\t!PRE_COPY\tuntested\tsame\twhy not\n"),
				"t.tsv", small_registry());
	EXPECT_TRUE(rows.back().expected.untested);
	EXPECT_NE(problems(table("mig_state_set\tvalid\tany\tuntested|ok\tSTOP\tx\n")).find("unknown outcome 'untested'"),
		  std::string::npos);
}

TEST(IoctlMatrixTable, EnvironmentOverridesTheTablePath)
{
	::setenv("VFIOMIG_IOCTL_MATRIX", "/elsewhere/m.tsv", 1);
	EXPECT_EQ(find_table("/src"), "/elsewhere/m.tsv");
	::unsetenv("VFIOMIG_IOCTL_MATRIX");
	EXPECT_NE(find_table("/src").find("fixtures/ioctl-matrix.tsv"), std::string::npos);
}

} // namespace
} // namespace vfiomig::matrix
