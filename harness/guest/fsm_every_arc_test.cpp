// Every SET_STATE from every state to every value follows the kernel's reference path.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class Fsm : public ProfileTest {};

// The migration flags each profile documents in vfio_mig_emu.h.
std::uint64_t documented_flags(Profile p)
{
	switch (p) {
	case Profile::Full:
		return kMigStopCopy | kMigP2P | kMigPreCopy;
	case Profile::StopCopy:
		return kMigStopCopy;
	case Profile::P2P:
		return kMigStopCopy | kMigP2P;
	case Profile::PreCopy:
		return kMigStopCopy | kMigPreCopy;
	}
	return 0;
}

// One case per profile, reachable start state and SET target: every
// state value, the first undefined one and one far out of range.
struct Arc {
	Target target;
	State from;
	std::uint32_t to;
};

std::vector<Arc> every_arc()
{
	std::vector<std::uint32_t> targets;
	for (State s : kAllStates)
		targets.push_back(static_cast<std::uint32_t>(s));
	targets.push_back(kNumStates);
	targets.push_back(0x7fffffffu);

	std::vector<Arc> arcs;
	for (const Target &t : target_params()) {
		// A foreign device was opened before the tests were registered:
		// its own flags say which start states exist.
		std::uint64_t flags = t.profile ? documented_flags(*t.profile) : pool(t, 0).flags;
		for (State from : kAllStates)
			if (is_valid_state(from, flags))
				for (std::uint32_t to : targets)
					arcs.push_back({t, from, to});
	}
	return arcs;
}

std::string arc_name(const ::testing::TestParamInfo<Arc> &info)
{
	const Arc &a = info.param;
	std::string to = a.to < kNumStates ? state_name(static_cast<State>(a.to)) : "state" + std::to_string(a.to);
	return a.target.name() + "_" + state_name(a.from) + "_to_" + to;
}

class FsmArc : public ProfileFixture, public ::testing::WithParamInterface<Arc> {
protected:
	Target target() const override { return GetParam().target; }
};

TEST_P(FsmArc, FollowsTheReferencePath)
{
	const Arc arc = GetParam();
	Device &dev = src();
	if (arc.target.profile) {
		ASSERT_EQ(flags(), documented_flags(*arc.target.profile))
			<< "the device advertises other migration flags than its profile documents";
	}

	Bytes stream;
	if (arc.from == State::Resuming) {
		// A valid stream of this very device, to leave RESUMING through STOP.
		stream = save(dev);
		ASSERT_OK(dev.try_reset());
	}
	MigrationSession start;
	if (arc.from != State::Running) {
		auto r = dev.try_set_state(arc.from);
		ASSERT_TRUE(r.ok()) << "reaching " << state_name(arc.from) << ": " << r.describe();
		start = std::move(r.value());
	}
	if (arc.from == State::Resuming) {
		ASSERT_TRUE(start.has_data()) << "RESUMING without a data fd";
		ASSERT_OK(load_stream(dev, start.data, stream));
	}

	auto ref = path(arc.from, arc.to, flags());
	auto r = dev.try_set_state(arc.to);
	auto now = dev.try_get_state();
	ASSERT_OK(now);
	if (ref) {
		ASSERT_TRUE(r.ok()) << "reference path " << path_to_string(*ref) << ": " << r.describe();
		const State to = static_cast<State>(arc.to);
		EXPECT_EQ(r->has_data(), starts_session(arc.from, to, flags()))
			<< "data_fd " << r->raw_data_fd << " for path " << path_to_string(*ref);
		if (!r->has_data()) {
			EXPECT_EQ(r->raw_data_fd, -1);
		}
		EXPECT_EQ(state_name(*now), state_name(to));
		if (emulated()) {
			EXPECT_EQ(emu::read_regs(dev).state, arc.to) << "BAR0 STATE register";
		}
	} else {
		EXPECT_ERRNO(r, EINVAL);
		EXPECT_EQ(state_name(*now), state_name(arc.from)) << "a refused SET changed the state";
	}
}

INSTANTIATE_TEST_SUITE_P(Arcs, FsmArc, ::testing::ValuesIn(every_arc()), arc_name);

TEST_P(Fsm, OptionalStatesRefusedWithoutTheirFlag)
{
	Device &dev = src();
	int refused = 0;
	for (State s : {State::RunningP2P, State::PreCopy, State::PreCopyP2P}) {
		if (is_valid_state(s, flags()))
			continue;
		refused++;
		EXPECT_ERRNO(dev.try_set_state(s), EINVAL);
		EXPECT_EQ(state_name(dev.get_state()), "RUNNING");
	}
	if (!refused)
		GTEST_SKIP() << target_label() << " supports every optional state";
}

TEST_P(Fsm, StopCopyToPrecopyRefused)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &dev = src();
	auto s = dev.set_state(State::StopCopy);
	EXPECT_ERRNO(dev.try_set_state(State::PreCopy), EINVAL);
	EXPECT_EQ(state_name(dev.get_state()), "STOP_COPY");
	if (has(kMigP2P)) {
		EXPECT_ERRNO(dev.try_set_state(State::PreCopyP2P), EINVAL);
		EXPECT_EQ(state_name(dev.get_state()), "STOP_COPY");
	}
}

VFIOMIG_INSTANTIATE_PROFILES(Fsm);

} // namespace
} // namespace vfiomig::test
