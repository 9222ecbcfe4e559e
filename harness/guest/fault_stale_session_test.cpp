// A FAIL_TO_ERROR fault of a session that has meanwhile ended does not send the device's later state to ERROR.
#include "control_expect.hpp"

#include <chrono>
#include <future>
#include <thread>

namespace vfiomig::test {
namespace {

using namespace control;
using namespace std::chrono_literals;

class FaultStaleSession : public FullProfileTest {};

TEST_F(FaultStaleSession, AReadFaultRacingPrecopyToRunningLeavesTheDeviceRunning)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &s = src();
	const std::string uuid = s.label();
	FaultGuard g(uuid);
	auto out = s.set_state(State::PreCopy);
	// PRE_COPY -> RUNNING holds the state mutex for 2 s before it ends
	// the session; the read's fault fires meanwhile and waits for it.
	Knobs k;
	k.arc_delays.push_back({static_cast<std::uint32_t>(State::PreCopy),
				static_cast<std::uint32_t>(State::Running), 2000000});
	nl()->set_knobs(uuid, k);
	Fault f = first_call(Site::Read, Effect::FailToError);
	f.err = EBADMSG;
	nl()->add_fault(uuid, f);

	auto set = std::async(std::launch::async, [&] { return s.try_set_state(State::Running); });
	std::this_thread::sleep_for(400ms);
	std::uint8_t buf[64];
	EXPECT_ERRNO(out.data.read(buf), EBADMSG);
	auto r = set.get();
	Knobs off;
	off.arc_delays.push_back({kAnyState, kAnyState, 0});
	nl()->set_knobs(uuid, off);
	ASSERT_OK(r) << "PRE_COPY -> RUNNING";
	EXPECT_EQ(state_name(s.get_state()), "RUNNING")
		<< "the fault of the ended session sent the RUNNING device (no session) to ERROR";
}

} // namespace
} // namespace vfiomig::test
