// The reference FSM path algorithm reproduces the kernel's combination transitions.
#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "vfiomig/state.hpp"

using namespace vfiomig;

namespace {

constexpr std::uint64_t kStopCopyOnly = kMigStopCopy;
constexpr std::uint64_t kP2P = kMigStopCopy | kMigP2P;
constexpr std::uint64_t kPreCopy = kMigStopCopy | kMigPreCopy;
constexpr std::uint64_t kFull = kMigStopCopy | kMigP2P | kMigPreCopy;

using S = State;

struct KnownPath {
	std::uint64_t flags;
	State from, to;
	std::vector<State> steps;
};

// From the comment above vfio_mig_get_next_state() (all features), and
// worked out by hand for the restricted flag sets.
const KnownPath kKnown[] = {
	// All optional features: the kernel's list of combination transitions.
	{kFull, S::PreCopy, S::StopCopy, {S::PreCopyP2P, S::StopCopy}},
	{kFull, S::PreCopy, S::RunningP2P, {S::Running, S::RunningP2P}},
	{kFull, S::PreCopy, S::Stop, {S::Running, S::RunningP2P, S::Stop}},
	{kFull, S::PreCopy, S::Resuming, {S::Running, S::RunningP2P, S::Stop, S::Resuming}},
	{kFull, S::PreCopyP2P, S::Running, {S::RunningP2P, S::Running}},
	{kFull, S::PreCopyP2P, S::Stop, {S::RunningP2P, S::Stop}},
	{kFull, S::PreCopyP2P, S::Resuming, {S::RunningP2P, S::Stop, S::Resuming}},
	{kFull, S::Resuming, S::RunningP2P, {S::Stop, S::RunningP2P}},
	{kFull, S::Resuming, S::PreCopyP2P, {S::Stop, S::RunningP2P, S::PreCopyP2P}},
	{kFull, S::Resuming, S::Running, {S::Stop, S::RunningP2P, S::Running}},
	{kFull, S::Resuming, S::PreCopy, {S::Stop, S::RunningP2P, S::Running, S::PreCopy}},
	{kFull, S::Resuming, S::StopCopy, {S::Stop, S::StopCopy}},
	{kFull, S::Running, S::PreCopyP2P, {S::RunningP2P, S::PreCopyP2P}},
	{kFull, S::Running, S::Stop, {S::RunningP2P, S::Stop}},
	{kFull, S::Running, S::Resuming, {S::RunningP2P, S::Stop, S::Resuming}},
	{kFull, S::Running, S::StopCopy, {S::RunningP2P, S::Stop, S::StopCopy}},
	{kFull, S::RunningP2P, S::PreCopy, {S::Running, S::PreCopy}},
	{kFull, S::RunningP2P, S::Resuming, {S::Stop, S::Resuming}},
	{kFull, S::RunningP2P, S::StopCopy, {S::Stop, S::StopCopy}},
	{kFull, S::Stop, S::PreCopyP2P, {S::RunningP2P, S::PreCopyP2P}},
	{kFull, S::Stop, S::Running, {S::RunningP2P, S::Running}},
	{kFull, S::Stop, S::PreCopy, {S::RunningP2P, S::Running, S::PreCopy}},
	{kFull, S::StopCopy, S::Resuming, {S::Stop, S::Resuming}},
	{kFull, S::StopCopy, S::RunningP2P, {S::Stop, S::RunningP2P}},
	{kFull, S::StopCopy, S::Running, {S::Stop, S::RunningP2P, S::Running}},
	// Single arcs.
	{kFull, S::Running, S::PreCopy, {S::PreCopy}},
	{kFull, S::PreCopy, S::Running, {S::Running}},
	{kFull, S::PreCopy, S::PreCopyP2P, {S::PreCopyP2P}},
	{kFull, S::PreCopyP2P, S::PreCopy, {S::PreCopy}},
	{kFull, S::PreCopyP2P, S::StopCopy, {S::StopCopy}},
	{kFull, S::StopCopy, S::Stop, {S::Stop}},
	{kFull, S::Stop, S::Resuming, {S::Resuming}},
	{kFull, S::Running, S::Running, {}},
	// STOP_COPY only: RUNNING <-> STOP directly.
	{kStopCopyOnly, S::Running, S::StopCopy, {S::Stop, S::StopCopy}},
	{kStopCopyOnly, S::Running, S::Stop, {S::Stop}},
	{kStopCopyOnly, S::Stop, S::Running, {S::Running}},
	{kStopCopyOnly, S::Running, S::Resuming, {S::Stop, S::Resuming}},
	{kStopCopyOnly, S::Resuming, S::Running, {S::Stop, S::Running}},
	{kStopCopyOnly, S::StopCopy, S::Running, {S::Stop, S::Running}},
	{kStopCopyOnly, S::StopCopy, S::Resuming, {S::Stop, S::Resuming}},
	// P2P without precopy.
	{kP2P, S::Running, S::StopCopy, {S::RunningP2P, S::Stop, S::StopCopy}},
	{kP2P, S::Resuming, S::Running, {S::Stop, S::RunningP2P, S::Running}},
	{kP2P, S::StopCopy, S::Running, {S::Stop, S::RunningP2P, S::Running}},
	// Precopy without P2P.
	{kPreCopy, S::Running, S::PreCopy, {S::PreCopy}},
	{kPreCopy, S::PreCopy, S::StopCopy, {S::StopCopy}},
	{kPreCopy, S::PreCopy, S::Stop, {S::Running, S::Stop}},
	{kPreCopy, S::PreCopy, S::Resuming, {S::Running, S::Stop, S::Resuming}},
	{kPreCopy, S::Resuming, S::PreCopy, {S::Stop, S::Running, S::PreCopy}},
	{kPreCopy, S::Stop, S::PreCopy, {S::Running, S::PreCopy}},
	{kPreCopy, S::Running, S::StopCopy, {S::Stop, S::StopCopy}},
};

std::string flags_str(std::uint64_t f) { return mig_flags_name(f); }

// The arcs a driver with these flags must implement (kernel comment).
std::set<std::pair<State, State>> required_arcs(std::uint64_t flags)
{
	std::set<std::pair<State, State>> arcs = {
		{S::Resuming, S::Stop}, {S::Stop, S::Resuming}, {S::Stop, S::StopCopy}, {S::StopCopy, S::Stop}};
	bool p2p = flags & kMigP2P, pre = flags & kMigPreCopy;
	if (p2p)
		arcs.insert({{S::Running, S::RunningP2P}, {S::RunningP2P, S::Running},
			     {S::RunningP2P, S::Stop}, {S::Stop, S::RunningP2P}});
	else
		arcs.insert({{S::Running, S::Stop}, {S::Stop, S::Running}});
	if (pre) {
		arcs.insert({{S::Running, S::PreCopy}, {S::PreCopy, S::Running}});
		if (p2p)
			arcs.insert({{S::PreCopy, S::PreCopyP2P}, {S::PreCopyP2P, S::PreCopy},
				     {S::PreCopyP2P, S::RunningP2P}, {S::PreCopyP2P, S::StopCopy},
				     {S::RunningP2P, S::PreCopyP2P}});
		else
			arcs.insert({S::PreCopy, S::StopCopy});
	}
	return arcs;
}

const std::uint64_t kFlagSets[] = {kStopCopyOnly, kP2P, kPreCopy, kFull};

} // namespace

TEST(StatePath, KnownKernelPathsAreReproduced)
{
	for (const KnownPath &k : kKnown) {
		auto p = path(k.from, k.to, k.flags);
		ASSERT_TRUE(p.has_value()) << state_name(k.from) << "->" << state_name(k.to) << " with "
					   << flags_str(k.flags);
		EXPECT_EQ(*p, k.steps) << state_name(k.from) << "->" << state_name(k.to) << " with "
				       << flags_str(k.flags) << ": got " << path_to_string(*p) << ", want "
				       << path_to_string(k.steps);
	}
}

TEST(StatePath, StopCopyToPrecopyIsRefused)
{
	EXPECT_FALSE(path(S::StopCopy, S::PreCopy, kFull));
	EXPECT_FALSE(path(S::StopCopy, S::PreCopyP2P, kFull));
	EXPECT_FALSE(path(S::StopCopy, S::PreCopy, kPreCopy));
	EXPECT_EQ(next_state(S::StopCopy, static_cast<std::uint32_t>(S::PreCopy), kFull), S::Error);
}

TEST(StatePath, ErrorIsNeitherTargetNorSource)
{
	for (std::uint64_t f : kFlagSets)
		for (State s : kAllStates) {
			if (s == S::Error)
				continue;
			EXPECT_FALSE(path(s, S::Error, f)) << state_name(s);
			EXPECT_FALSE(path(S::Error, s, f)) << state_name(s);
		}
}

TEST(StatePath, UndefinedTargetsAreRefused)
{
	for (std::uint32_t raw : {8u, 9u, 100u, 0xffffffffu})
		EXPECT_FALSE(path(S::Running, raw, kFull)) << raw;
}

TEST(StatePath, OptionalStatesRefusedWithoutTheirFlag)
{
	EXPECT_FALSE(path(S::Running, S::RunningP2P, kStopCopyOnly));
	EXPECT_FALSE(path(S::Running, S::PreCopy, kStopCopyOnly));
	EXPECT_FALSE(path(S::Running, S::PreCopy, kP2P));
	EXPECT_FALSE(path(S::Running, S::PreCopyP2P, kPreCopy));
	EXPECT_FALSE(path(S::Running, S::RunningP2P, kPreCopy));
	EXPECT_FALSE(is_valid_state(S::PreCopyP2P, kPreCopy));
	EXPECT_TRUE(is_valid_state(S::PreCopyP2P, kFull));
	EXPECT_FALSE(is_valid_state(S::Error, kFull));
}

TEST(StatePath, EveryStepIsARequiredArcAndNoSavingStateIsInterior)
{
	for (std::uint64_t f : kFlagSets) {
		auto arcs = required_arcs(f);
		for (State from : kAllStates) {
			if (!is_valid_state(from, f))
				continue;
			for (State to : kAllStates) {
				auto p = path(from, to, f);
				if (!is_valid_state(to, f)) {
					EXPECT_FALSE(p) << state_name(from) << "->" << state_name(to);
					continue;
				}
				bool blocked = from == S::StopCopy && (to == S::PreCopy || to == S::PreCopyP2P);
				ASSERT_EQ(p.has_value(), !blocked) << state_name(from) << "->" << state_name(to)
								   << " with " << flags_str(f);
				if (!p)
					continue;
				State cur = from;
				bool still_saving = in_saving_group(from);
				for (std::size_t i = 0; i < p->size(); i++) {
					State next = (*p)[i];
					EXPECT_TRUE(arcs.count({cur, next}))
						<< state_name(cur) << "->" << state_name(next) << " not a required arc in "
						<< state_name(from) << "->" << state_name(to) << " with " << flags_str(f);
					EXPECT_TRUE(is_valid_state(next, f));
					// A session is never opened and closed within one SET:
					// interior saving states only continue the current one.
					still_saving = still_saving && in_saving_group(next);
					if (i + 1 < p->size() && !still_saving) {
						EXPECT_FALSE(in_saving_group(next))
							<< "interior saving state in " << path_to_string(*p);
					}
					cur = next;
				}
				EXPECT_LE(p->size(), 4u);
			}
		}
	}
}

TEST(StatePath, DataFdReturnedExactlyWhenTheLastArcStartsASession)
{
	EXPECT_TRUE(starts_session(S::Running, S::PreCopy, kFull));
	EXPECT_TRUE(starts_session(S::Running, S::StopCopy, kFull));
	EXPECT_TRUE(starts_session(S::Running, S::StopCopy, kStopCopyOnly));
	EXPECT_TRUE(starts_session(S::Running, S::Resuming, kFull));
	EXPECT_TRUE(starts_session(S::Stop, S::PreCopyP2P, kFull));
	EXPECT_TRUE(starts_session(S::Resuming, S::PreCopy, kPreCopy));
	EXPECT_FALSE(starts_session(S::PreCopy, S::StopCopy, kFull));
	EXPECT_FALSE(starts_session(S::PreCopy, S::StopCopy, kPreCopy));
	EXPECT_FALSE(starts_session(S::PreCopy, S::PreCopyP2P, kFull));
	EXPECT_FALSE(starts_session(S::PreCopyP2P, S::PreCopy, kFull));
	EXPECT_FALSE(starts_session(S::Running, S::Running, kFull));
	EXPECT_FALSE(starts_session(S::StopCopy, S::Stop, kFull));
	EXPECT_FALSE(starts_session(S::StopCopy, S::PreCopy, kFull));
	EXPECT_TRUE(starts_session(S::StopCopy, S::Resuming, kFull));
}

TEST(StateNames, RoundTrip)
{
	for (State s : kAllStates)
		EXPECT_EQ(parse_state(state_name(s)), s);
	EXPECT_EQ(state_name(S::StopCopy), "STOP_COPY");
	EXPECT_EQ(state_name(9u), "STATE(9)");
	EXPECT_EQ(parse_state("pre_copy_p2p"), S::PreCopyP2P);
	EXPECT_FALSE(parse_state("bogus"));
	EXPECT_EQ(mig_flags_name(kFull), "STOP_COPY|P2P|PRE_COPY");
}
