// Every SET_STATE from every state to every value follows the kernel's reference path.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class Fsm : public ProfileTest {};

TEST_P(Fsm, EveryArcMatchesReferencePath)
{
	Device &dev = src();
	// A valid stream of this very device, to leave RESUMING through STOP.
	Bytes stream = save(dev);
	ASSERT_OK(dev.try_reset());

	std::vector<std::uint32_t> targets;
	for (State s : kAllStates)
		targets.push_back(static_cast<std::uint32_t>(s));
	targets.push_back(kNumStates);      // first undefined value
	targets.push_back(0x7fffffffu);     // far out of range

	for (State from : kAllStates) {
		if (!is_valid_state(from, flags()))
			continue;
		for (std::uint32_t to : targets) {
			SCOPED_TRACE(state_name(from) + " -> " + state_name(to));
			ASSERT_OK(dev.try_reset());
			MigrationSession start;
			if (from != State::Running) {
				auto r = dev.try_set_state(from);
				ASSERT_TRUE(r.ok()) << "reaching " << state_name(from) << ": " << r.describe();
				start = std::move(r.value());
			}
			if (from == State::Resuming) {
				ASSERT_TRUE(start.has_data()) << "RESUMING without a data fd";
				ASSERT_OK(load_stream(dev, start.data, stream));
			}

			auto ref = path(from, to, flags());
			auto r = dev.try_set_state(to);
			if (ref) {
				ASSERT_TRUE(r.ok()) << "reference path " << path_to_string(*ref) << ": " << r.describe();
				EXPECT_EQ(r->has_data(), starts_session(from, static_cast<State>(to), flags()))
					<< "data_fd " << r->raw_data_fd << " for path " << path_to_string(*ref);
				if (!r->has_data()) {
					EXPECT_EQ(r->raw_data_fd, -1);
				}
				auto now = dev.try_get_state();
				ASSERT_OK(now);
				EXPECT_EQ(state_name(*now), state_name(to));
				EXPECT_EQ(emu::read_regs(dev).state, to) << "BAR0 STATE register";
			} else {
				EXPECT_ERRNO(r, EINVAL);
				auto now = dev.try_get_state();
				ASSERT_OK(now);
				EXPECT_EQ(state_name(*now), state_name(from)) << "a refused SET changed the state";
			}
		}
	}
}

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
		GTEST_SKIP() << "profile " << profile_name(profile()) << " supports every optional state";
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
