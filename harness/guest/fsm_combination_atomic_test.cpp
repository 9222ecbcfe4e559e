// GET_STATE during a combination SET_STATE sees the start or the end state, never an interior step of the path.
#include "control_expect.hpp"

#include <atomic>
#include <set>
#include <thread>

namespace vfiomig::test {
namespace {

using namespace control;

class FsmCombinationAtomic : public FullProfileTest {
protected:
	void TearDown() override
	{
		FullProfileTest::TearDown();
		// Back to no arc delay, whatever the test did (nothing to undo
		// when SetUp skipped before it got an instance).
		if (!has_src())
			return;
		if (Client *c = nl()) {
			Knobs k;
			k.arc_delays.push_back({kAnyState, kAnyState, 0});
			try {
				c->set_knobs(src().label(), k);
			} catch (const Error &) {
			}
		}
	}

	/// States GET_STATE reports while `dev` goes from its state to `to`
	/// (each arc slowed down so a poller has time to look).
	std::set<State> seen_during(Device &dev, State to)
	{
		std::set<State> seen;
		std::atomic<bool> done{false};
		std::thread poller([&] {
			while (!done) {
				if (auto s = dev.try_get_state(); s.ok())
					seen.insert(*s);
				std::this_thread::sleep_for(std::chrono::milliseconds(1));
			}
		});
		auto r = dev.try_set_state(to);
		done = true;
		poller.join();
		EXPECT_OK(r) << "SET " << state_name(to);
		return seen;
	}
};

TEST_F(FsmCombinationAtomic, GetStateNeverShowsAnInteriorStep)
{
	Knobs k;
	k.arc_delays.push_back({kAnyState, kAnyState, 40000}); // 40 ms per arc
	nl()->set_knobs(src().label(), k);

	// Each is a combination transition of at least two arcs on "full".
	const std::pair<State, State> cases[] = {
		{State::Running, State::StopCopy}, // RUNNING_P2P, STOP on the way
		{State::StopCopy, State::Running}, // STOP, RUNNING_P2P on the way
		{State::Running, State::PreCopyP2P},
	};
	for (auto [from, to] : cases) {
		SCOPED_TRACE(state_name(from) + " -> " + state_name(to));
		ASSERT_OK(src().try_reset());
		if (from != State::Running) {
			ASSERT_OK(src().try_set_state(from));
		}
		std::set<State> seen = seen_during(src(), to);
		for (State s : seen)
			EXPECT_TRUE(s == from || s == to)
				<< "GET_STATE reported " << state_name(s) << " while the device went " << state_name(from)
				<< " -> " << state_name(to) << ": an interior step of the path is visible";
		EXPECT_EQ(state_name(src().get_state()), state_name(to));
	}
}

} // namespace
} // namespace vfiomig::test
