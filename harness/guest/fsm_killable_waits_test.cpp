// A caller waiting for a device busy in a long sleep (arc delay, DELAY fault) can be killed, and ending a session cuts such a sleep short.
#include "control_expect.hpp"

#include <chrono>
#include <csignal>
#include <fstream>
#include <future>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace vfiomig::test {
namespace {

using namespace control;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kBusy = 4s;
/// Each test acts 600 ms into kBusy: a waiter that really waited out the
/// sleep would take at least kBusy - kActAt.
constexpr auto kActAt = 600ms;

/// The hung-task detector's timeout while these tests run: a task in a
/// plain uninterruptible wait behind the 4 s sleeps is reported (and the
/// kernel-log check fails the test); killable and interruptible waits are
/// not.  Where the kernel has no detector the file is absent.
constexpr const char *kHungTaskTimeout = "/proc/sys/kernel/hung_task_timeout_secs";

std::string read_line(const char *path)
{
	std::ifstream f(path);
	std::string line;
	std::getline(f, line);
	return line;
}

bool write_line(const char *path, const std::string &v)
{
	std::ofstream f(path);
	f << v << "\n";
	f.flush();
	return static_cast<bool>(f);
}

/// How long SIGKILL takes to end a child that waits in pause(): the
/// baseline for a child that waits in the module.
Clock::duration sigkill_baseline()
{
	pid_t pid = ::fork();
	if (pid == 0) {
		::pause();
		::_exit(0);
	}
	if (pid < 0)
		return 0ms;
	std::this_thread::sleep_for(50ms);
	auto t0 = Clock::now();
	::kill(pid, SIGKILL);
	int status = 0;
	::waitpid(pid, &status, 0);
	return Clock::now() - t0;
}

std::uint32_t us(std::chrono::microseconds d)
{
	return static_cast<std::uint32_t>(d.count());
}

class KillableWaits : public ArcDelayTest {
protected:
	void SetUp() override
	{
		ArcDelayTest::SetUp();
		if (IsSkipped() || HasFatalFailure())
			return;
		saved_hung_timeout_ = read_line(kHungTaskTimeout);
		if (!saved_hung_timeout_.empty() && !write_line(kHungTaskTimeout, "1"))
			saved_hung_timeout_.clear(); // not root: the detector keeps its timeout
	}

	void TearDown() override
	{
		if (!saved_hung_timeout_.empty())
			write_line(kHungTaskTimeout, saved_hung_timeout_);
		ArcDelayTest::TearDown();
	}

private:
	std::string saved_hung_timeout_;
};

TEST_F(KillableWaits, GetStateBehindAnArcDelayDiesPromptlyOnSigkill)
{
	Device &s = src();
	const auto bound = prompt_bound(sigkill_baseline(), kBusy - kActAt);
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
	EXPECT_LT(took, bound) << "SIGKILL took " << ms_of(took) << " ms (bound " << ms_of(bound)
			       << " ms from this run's baseline) to end a GET MIG_DEVICE_STATE waiting behind an arc delay"
				  " (uninterruptible wait)";
	EXPECT_OK(set.get());
}

TEST_F(KillableWaits, ASetSleepsAtMostTheMaximumDelayInAllHoweverManyArcs)
{
	Device &s = src();
	// RUNNING -> STOP_COPY is RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY:
	// three arcs of 5 s would hold the device 15 s.  The same SET without
	// delays is the baseline for the work besides the sleeps.
	auto t_base = Clock::now();
	ASSERT_OK(s.try_set_state(State::StopCopy));
	const auto baseline = Clock::now() - t_base;
	ASSERT_OK(s.try_set_state(State::Running));
	Knobs k;
	k.arc_delays.push_back({kAnyState, kAnyState, 5000000});
	nl()->set_knobs(s.label(), k);
	auto t0 = Clock::now();
	auto r = s.try_set_state(State::StopCopy);
	auto took = Clock::now() - t0;
	ASSERT_OK(r);
	auto max = std::chrono::microseconds(VFIO_MIG_EMU_MAX_DELAY_US);
	EXPECT_GE(took, max - 100ms) << "the SET slept less than its delays allow";
	// A SET that slept one more arc's delay takes max + 5 s.
	const auto slack = prompt_bound(baseline, 5s);
	EXPECT_LT(took, max + slack) << "the SET took " << ms_of(took) << " ms (the same SET without delays "
				     << ms_of(baseline) << " ms): it slept more than VFIO_MIG_EMU_MAX_DELAY_US in all";
}

TEST_F(KillableWaits, EndingASessionCutsAReadDelayShort)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &s = src();
	FaultGuard g(s.label());
	// Baseline: the same PRE_COPY -> RUNNING with no read sleeping.
	(void)s.set_state(State::PreCopy);
	auto t_base = Clock::now();
	ASSERT_OK(s.try_set_state(State::Running));
	const auto bound = prompt_bound(Clock::now() - t_base, kBusy - 300ms);
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
	EXPECT_LT(took, bound) << "ending the session took " << ms_of(took) << " ms (bound " << ms_of(bound)
			       << " ms from this run's baseline): it waited for a read sleeping a DELAY fault";
	(void)reader.get(); // data or ENODEV: the session ended under it
	EXPECT_EQ(state_name(s.get_state()), "RUNNING");
}

} // namespace
} // namespace vfiomig::test
