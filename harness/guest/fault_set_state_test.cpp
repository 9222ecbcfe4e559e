// A SET_STATE that fails on any arc of its path leaves the device in that arc's from state, or in ERROR.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class FsmFailure : public ProfileTest {};

constexpr std::uint32_t kInjected = EREMOTEIO; // an errno the device never returns by itself

// For every (from, to) with a path and every arc on it: inject a failure
// on that arc and check where the device ends up.
void check_every_failing_arc(Device &dev, std::uint64_t flags, control::Effect effect)
{
	control::Client &ctl = *nl();
	FaultGuard guard(dev.label());
	for (State from : kAllStates) {
		if (!is_valid_state(from, flags) || from == State::Resuming)
			continue; // leaving RESUMING needs a stream; covered by the arc after STOP
		for (State to : kAllStates) {
			auto p = path(from, to, flags);
			if (!p || p->empty())
				continue;
			State before = from;
			for (State step : *p) {
				SCOPED_TRACE(state_name(from) + " -> " + state_name(to) + ", failing arc " +
					     state_name(before) + "->" + state_name(step));
				ASSERT_OK(dev.try_reset());
				MigrationSession keep;
				if (from != State::Running) {
					auto r = dev.try_set_state(from);
					ASSERT_OK(r);
					keep = std::move(r.value());
				}
				control::Fault f;
				f.site = control::Site::SetState;
				f.effect = effect;
				f.from = static_cast<std::uint32_t>(before);
				f.to = static_cast<std::uint32_t>(step);
				f.trigger = control::Trigger::Nth;
				f.n = 1;
				f.err = kInjected;
				std::uint32_t id = ctl.add_fault(dev.label(), f);
				auto r = dev.try_set_state(to);
				EXPECT_EQ(errno_name(r.err()), errno_name(static_cast<int>(kInjected))) << r.describe();
				auto now = dev.try_get_state();
				ASSERT_OK(now);
				if (effect == control::Effect::FailToError)
					EXPECT_EQ(state_name(*now), "ERROR");
				else
					EXPECT_EQ(state_name(*now), state_name(before))
						<< "a failed arc must leave the device in its from state "
						   "(earlier arcs of the path kept)";
				ctl.clear_faults(dev.label(), id);
				before = step;
			}
		}
	}
}

TEST_P(FsmFailure, FailedArcLeavesTheDeviceInItsFromState)
{
	REQUIRE_CONTROL();
	check_every_failing_arc(src(), flags(), control::Effect::Fail);
}

TEST_P(FsmFailure, FailedArcToErrorNeedsAReset)
{
	REQUIRE_CONTROL();
	check_every_failing_arc(src(), flags(), control::Effect::FailToError);
	// The last case left ERROR behind: only RESET leaves it.
	EXPECT_ERRNO(src().try_set_state(State::Running), EINVAL);
	ASSERT_OK(src().try_reset());
	EXPECT_EQ(state_name(src().get_state()), "RUNNING");
}

TEST_P(FsmFailure, ErrorEndsTheSavingSession)
{
	REQUIRE_CONTROL();
	Device &dev = src();
	FaultGuard guard(dev.label());
	auto s = dev.set_state(State::StopCopy);
	ASSERT_TRUE(s.has_data());
	control::Fault f;
	f.site = control::Site::SetState;
	f.effect = control::Effect::FailToError;
	nl()->add_fault(dev.label(), f);
	EXPECT_FALSE(dev.try_set_state(State::Stop).ok());
	EXPECT_EQ(state_name(dev.get_state()), "ERROR");
	std::uint8_t buf[64];
	EXPECT_ERRNO(s.data.read(buf), ENODEV);
}

VFIOMIG_INSTANTIATE_PROFILES(FsmFailure);

} // namespace
} // namespace vfiomig::test
