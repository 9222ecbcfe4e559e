// A control command that waits for one busy device holds up neither the rest of generic netlink (CTRL_CMD_GETFAMILY) nor other devices.
#include "control_expect.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>

namespace vfiomig::test {
namespace {

using namespace control;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// How long resolving a generic netlink family takes (Client::open():
/// CTRL_CMD_GETFAMILY for the family and its group, on a new socket).
Clock::duration getfamily_time()
{
	auto t0 = Clock::now();
	Client c = Client::open();
	return Clock::now() - t0;
}

/// The fastest of three GETFAMILYs while nothing is busy: the baseline.
Clock::duration getfamily_baseline()
{
	Clock::duration best = Clock::duration::max();
	for (int i = 0; i < 3; i++)
		best = std::min(best, getfamily_time());
	return best;
}

/// How long the device stays busy.  Each test measures 600 ms into it, so
/// a held-up call would wait at least kBusy - kMeasuredAt.
constexpr auto kBusy = 3s;
constexpr auto kMeasuredAt = 600ms;

class ControlParallel : public ArcDelayTest {};

TEST_F(ControlParallel, GetFamilyAnswersWhileADevGetWaitsBehindAReadDelay)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &s = src();
	const std::string uuid = s.label();
	const auto bound = prompt_bound(getfamily_baseline(), kBusy - kMeasuredAt);
	FaultGuard g(uuid);
	auto out = s.set_state(State::PreCopy);
	Fault f = first_call(Site::Read, Effect::Delay);
	f.delay_us = std::chrono::duration_cast<std::chrono::microseconds>(kBusy).count();
	nl()->add_fault(uuid, f);

	// The read sleeps its DELAY holding the session; a DEV_GET of the
	// device (its precopy figures) waits for the session.
	auto reader = std::async(std::launch::async, [&] {
		std::uint8_t buf[64];
		return out.data.read(buf);
	});
	std::this_thread::sleep_for(300ms);
	auto query = std::async(std::launch::async, [&] { return Client::open().device(uuid).state; });
	std::this_thread::sleep_for(300ms);
	auto took = getfamily_time();
	EXPECT_LT(took, bound) << "CTRL_CMD_GETFAMILY took " << ms_of(took) << " ms (bound " << ms_of(bound)
			       << " ms from this run's baseline) while a DEV_GET waited for a busy device";
	EXPECT_OK(reader.get());
	EXPECT_EQ(query.get(), static_cast<std::uint32_t>(State::PreCopy));
}

TEST_F(ControlParallel, GetFamilyAnswersWhileAKnobsSetWaitsBehindAnArcDelay)
{
	Device &s = src();
	const std::string uuid = s.label();
	const auto bound = prompt_bound(getfamily_baseline(), kBusy - kMeasuredAt);
	auto t_other = Clock::now();
	nl()->device(dst().label());
	const auto other_bound = prompt_bound(Clock::now() - t_other, kBusy - kMeasuredAt);
	Knobs k;
	// RUNNING -> STOP goes through RUNNING_P2P: delay the arc into STOP.
	k.arc_delays.push_back({kAnyState, static_cast<std::uint32_t>(State::Stop),
				static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(kBusy).count())});
	nl()->set_knobs(uuid, k);

	auto set = std::async(std::launch::async, [&] { return s.try_set_state(State::Stop); });
	std::this_thread::sleep_for(300ms);
	// KNOBS_SET waits for the SET in its arc delay.
	auto knobs = std::async(std::launch::async, [&] {
		Knobs k2;
		k2.dirty_rate = 0;
		return Client::open().set_knobs(uuid, k2).dirty_rate;
	});
	std::this_thread::sleep_for(300ms);
	auto took = getfamily_time();
	EXPECT_LT(took, bound) << "CTRL_CMD_GETFAMILY took " << ms_of(took) << " ms (bound " << ms_of(bound)
			       << " ms from this run's baseline) while a KNOBS_SET waited for a device in an arc delay";
	// Another device answers as quickly as it did before.
	auto t0 = Clock::now();
	nl()->device(dst().label());
	auto other = Clock::now() - t0;
	EXPECT_LT(other, other_bound) << "DEV_GET of another device took " << ms_of(other) << " ms (bound "
				      << ms_of(other_bound) << " ms): held up";
	EXPECT_OK(set.get());
	EXPECT_EQ(knobs.get(), 0u);
}

} // namespace
} // namespace vfiomig::test
