// Concurrent SET_STATE, GET_STATE, data reads and resets on one device stay consistent.
#include "common.hpp"

#include <atomic>
#include <random>
#include <thread>

namespace vfiomig::test {
namespace {

class FsmConcurrency : public ProfileTest {};

TEST_P(FsmConcurrency, ParallelTransitionsKeepAValidState)
{
	Device &dev = src();
	std::vector<State> valid;
	for (State s : kAllStates)
		if (is_valid_state(s, flags()))
			valid.push_back(s);

	std::atomic<bool> stop{false};
	std::atomic<int> bad_errno{0};
	std::atomic<unsigned> sets{0};
	auto setter = [&](unsigned seed) {
		std::mt19937 rng(seed);
		std::uint8_t buf[4096];
		while (!stop) {
			State to = valid[rng() % valid.size()];
			auto r = dev.try_set_state(to);
			sets++;
			if (r.ok()) {
				if (r->has_data() && to != State::Resuming)
					(void)r->data.read(buf); // exercise the session while others race
				continue;
			}
			// EINVAL: refused from the current state (or from ERROR).
			if (r.err() != EINVAL)
				bad_errno = r.err();
			if (rng() % 4 == 0)
				(void)dev.try_reset();
		}
	};
	auto getter = [&] {
		while (!stop) {
			auto g = dev.try_get_state();
			if (!g)
				bad_errno = g.err();
		}
	};
	std::vector<std::thread> threads;
	for (unsigned i = 0; i < 3; i++)
		threads.emplace_back(setter, 1234 + i);
	threads.emplace_back(getter);
	std::this_thread::sleep_for(std::chrono::milliseconds(1500));
	stop = true;
	for (auto &t : threads)
		t.join();

	EXPECT_EQ(bad_errno.load(), 0) << "unexpected errno " << errno_name(bad_errno.load());
	EXPECT_GT(sets.load(), 10u);
	auto now = dev.try_get_state();
	ASSERT_OK(now);
	EXPECT_TRUE(*now == State::Error || is_valid_state(*now, flags())) << state_name(*now);
	ASSERT_OK(dev.try_reset());
	EXPECT_EQ(state_name(dev.get_state()), "RUNNING");
}

VFIOMIG_INSTANTIATE_PROFILES(FsmConcurrency);

} // namespace
} // namespace vfiomig::test
