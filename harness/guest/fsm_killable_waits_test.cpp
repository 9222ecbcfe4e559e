// A caller waiting for a device busy in a long sleep (arc delay, DELAY fault) can be killed, and ending a session cuts such a sleep short.
#include "control_expect.hpp"

#include <chrono>
#include <csignal>
#include <future>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace vfiomig::test {
namespace {

using namespace control;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kBusy = 4s;
/// A killed waiter that really waited would take most of kBusy.
constexpr auto kPrompt = 1500ms;

std::uint32_t us(std::chrono::microseconds d)
{
	return static_cast<std::uint32_t>(d.count());
}

class KillableWaits : public FullProfileTest {
protected:
	/// Arc delays back to 0 (a skipped test, e.g. on a foreign target,
	/// has no control plane and set none).
	void TearDown() override
	{
		control::Client *c = IsSkipped() ? nullptr : nl();
		if (c) {
			Knobs off;
			off.arc_delays.push_back({kAnyState, kAnyState, 0});
			try {
				c->set_knobs(src().label(), off);
			} catch (const Error &) {
			}
		}
		FullProfileTest::TearDown();
	}
};

TEST_F(KillableWaits, GetStateBehindAnArcDelayDiesPromptlyOnSigkill)
{
	Device &s = src();
	Knobs k;
	// RUNNING -> STOP goes through RUNNING_P2P: delay the arc into STOP.
	k.arc_delays.push_back({kAnyState, static_cast<std::uint32_t>(State::Stop),
				us(kBusy)});
	nl()->set_knobs(s.label(), k);
	auto set = std::async(std::launch::async, [&] { return s.try_set_state(State::Stop); });
	std::this_thread::sleep_for(300ms);
	// The child shares the device fd; its GET waits for the SET.
	pid_t pid = ::fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		(void)s.try_get_state();
		::_exit(0);
	}
	std::this_thread::sleep_for(300ms);
	auto t0 = Clock::now();
	::kill(pid, SIGKILL);
	int status = 0;
	ASSERT_EQ(::waitpid(pid, &status, 0), pid);
	auto took = Clock::now() - t0;
	EXPECT_TRUE(WIFSIGNALED(status)) << "the child's GET returned before the SET ended";
	EXPECT_LT(took, kPrompt) << "SIGKILL took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
				 << " ms to end a GET MIG_DEVICE_STATE waiting behind an arc delay (uninterruptible wait)";
	EXPECT_OK(set.get());
}

TEST_F(KillableWaits, ASetSleepsAtMostTheMaximumDelayInAllHoweverManyArcs)
{
	Device &s = src();
	// RUNNING -> STOP_COPY is RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY:
	// three arcs of 5 s would hold the device 15 s.
	Knobs k;
	k.arc_delays.push_back({kAnyState, kAnyState, 5000000});
	nl()->set_knobs(s.label(), k);
	auto t0 = Clock::now();
	auto r = s.try_set_state(State::StopCopy);
	auto took = Clock::now() - t0;
	ASSERT_OK(r);
	auto max = std::chrono::microseconds(VFIO_MIG_EMU_MAX_DELAY_US);
	EXPECT_GE(took, max - 100ms) << "the SET slept less than its delays allow";
	EXPECT_LT(took, max + 2500ms) << "the SET slept "
				      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
				      << " ms: more than VFIO_MIG_EMU_MAX_DELAY_US in all";
}

TEST_F(KillableWaits, EndingASessionCutsAReadDelayShort)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &s = src();
	FaultGuard g(s.label());
	auto out = s.set_state(State::PreCopy);
	Fault f = first_call(Site::Read, Effect::Delay);
	f.delay_us = us(kBusy);
	nl()->add_fault(s.label(), f);
	auto reader = std::async(std::launch::async, [&] {
		std::uint8_t buf[64];
		return out.data.read(buf);
	});
	std::this_thread::sleep_for(300ms);
	// PRE_COPY -> RUNNING ends the session: it must not wait out the read.
	auto t0 = Clock::now();
	auto r = s.try_set_state(State::Running);
	auto took = Clock::now() - t0;
	EXPECT_OK(r);
	EXPECT_LT(took, kPrompt) << "ending the session waited "
				 << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
				 << " ms for a read sleeping a DELAY fault";
	(void)reader.get(); // data or ENODEV: the session ended under it
	EXPECT_EQ(state_name(s.get_state()), "RUNNING");
}

} // namespace
} // namespace vfiomig::test
