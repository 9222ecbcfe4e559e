// Faults at the data fd sites (READ, WRITE) do what their effect says, seen through read()/write() and the state.
#include "control_expect.hpp"

#include <chrono>

namespace vfiomig::test {
namespace {

using namespace control;
using Clock = std::chrono::steady_clock;

class FaultDataFd : public FullProfileTest {
protected:
	/// A complete stream of a scribbled source, and the digest it carries.
	Bytes saved_stream(std::uint32_t *digest)
	{
		EXPECT_OK(emu::scribble(src(), 301, 6));
		Bytes s = save(src());
		*digest = emu::digest(src());
		return s;
	}
};

TEST_F(FaultDataFd, ReadFailReturnsTheErrnoAndLosesNoByte)
{
	Device &s = src();
	Device &d = dst();
	FaultGuard g(s.label());
	ASSERT_OK(emu::scribble(s, 302, 6));
	auto out = s.set_state(State::StopCopy);
	Fault f = first_call(Site::Read, Effect::Fail);
	f.err = ENOSPC;
	nl()->add_fault(s.label(), f);
	std::uint8_t buf[64];
	EXPECT_ERRNO(out.data.read(buf), ENOSPC);
	EXPECT_EQ(state_name(s.get_state()), "STOP_COPY") << "FAIL changed the state";
	auto in = d.set_state(State::Resuming);
	ASSERT_OK(pump(out.data, &in.data, {PumpUntil::Eof, {}, {}, nullptr}));
	ASSERT_OK(d.try_set_state(State::Stop)) << "the stream after a failed read is incomplete";
	EXPECT_EQ(emu::digest(d), emu::digest(s));
}

TEST_F(FaultDataFd, ReadFailToErrorEndsTheSessionUntilReset)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &s = src();
	FaultGuard g(s.label());
	auto out = s.set_state(State::PreCopy);
	Fault f = fault(Site::Read, Effect::FailToError);
	f.err = EBADMSG;
	nl()->add_fault(s.label(), f);
	std::uint8_t buf[64];
	EXPECT_ERRNO(out.data.read(buf), EBADMSG);
	EXPECT_EQ(state_name(s.get_state()), "ERROR");
	EXPECT_ERRNO(out.data.read(buf), ENODEV) << "ERROR must end the saving session";
	EXPECT_ERRNO(s.try_set_state(State::Running), EINVAL);
	ASSERT_OK(s.try_reset());
	EXPECT_EQ(state_name(s.get_state()), "RUNNING");
}

TEST_F(FaultDataFd, ReadDelayTakesAtLeastTheDelay)
{
	Device &s = src();
	FaultGuard g(s.label());
	auto out = s.set_state(State::StopCopy);
	Fault f = first_call(Site::Read, Effect::Delay);
	f.delay_us = 100000;
	nl()->add_fault(s.label(), f);
	std::uint8_t buf[64];
	auto t0 = Clock::now();
	auto r = out.data.read(buf);
	EXPECT_GE(Clock::now() - t0, kDelayFloor);
	ASSERT_OK(r);
	EXPECT_EQ(*r, sizeof(buf)) << "DELAY must not shorten the read";
}

TEST_F(FaultDataFd, ReadShortIoMovesAtMostHalf)
{
	Device &s = src();
	FaultGuard g(s.label());
	auto out = s.set_state(State::StopCopy);
	nl()->add_fault(s.label(), fault(Site::Read, Effect::ShortIo));
	std::uint8_t buf[100];
	auto r = out.data.read(buf);
	ASSERT_OK(r);
	EXPECT_GE(*r, 1u);
	EXPECT_LE(*r, 50u);
	auto one = out.data.read(std::span(buf, 1));
	ASSERT_OK(one);
	EXPECT_EQ(*one, 1u) << "SHORT_IO moves at least one byte";
}

TEST_F(FaultDataFd, WriteFailConsumesNoByte)
{
	std::uint32_t digest = 0;
	Bytes stream = saved_stream(&digest);
	Device &d = dst();
	FaultGuard g(d.label());
	auto in = d.set_state(State::Resuming);
	Fault f = first_call(Site::Write, Effect::Fail);
	f.err = EXDEV;
	nl()->add_fault(d.label(), f);
	EXPECT_ERRNO(in.data.write(stream), EXDEV);
	EXPECT_EQ(state_name(d.get_state()), "RESUMING");
	ASSERT_OK(write_all(in.data, stream)) << "the same bytes again, from the start";
	ASSERT_OK(d.try_set_state(State::Stop));
	EXPECT_EQ(emu::digest(d), digest);
}

TEST_F(FaultDataFd, WriteFailToErrorEndsTheSessionUntilReset)
{
	std::uint32_t digest = 0;
	Bytes stream = saved_stream(&digest);
	Device &d = dst();
	FaultGuard g(d.label());
	auto in = d.set_state(State::Resuming);
	Fault f = fault(Site::Write, Effect::FailToError);
	f.err = EPROTO;
	nl()->add_fault(d.label(), f);
	EXPECT_ERRNO(in.data.write(stream), EPROTO);
	EXPECT_EQ(state_name(d.get_state()), "ERROR");
	EXPECT_ERRNO(in.data.write(stream), ENODEV);
	EXPECT_ERRNO(d.try_set_state(State::Stop), EINVAL);
	ASSERT_OK(d.try_reset());
	EXPECT_EQ(state_name(d.get_state()), "RUNNING");
}

TEST_F(FaultDataFd, WriteDelayTakesAtLeastTheDelay)
{
	std::uint32_t digest = 0;
	Bytes stream = saved_stream(&digest);
	Device &d = dst();
	FaultGuard g(d.label());
	auto in = d.set_state(State::Resuming);
	Fault f = first_call(Site::Write, Effect::Delay);
	f.delay_us = 100000;
	nl()->add_fault(d.label(), f);
	auto t0 = Clock::now();
	ASSERT_OK(write_all(in.data, stream));
	EXPECT_GE(Clock::now() - t0, kDelayFloor);
	ASSERT_OK(d.try_set_state(State::Stop));
	EXPECT_EQ(emu::digest(d), digest);
}

TEST_F(FaultDataFd, WriteShortIoTakesAtMostHalfAndTheStreamStillLoads)
{
	std::uint32_t digest = 0;
	Bytes stream = saved_stream(&digest);
	Device &d = dst();
	FaultGuard g(d.label());
	auto in = d.set_state(State::Resuming);
	nl()->add_fault(d.label(), fault(Site::Write, Effect::ShortIo));
	auto w = in.data.write(ByteSpan(stream.data(), 100));
	ASSERT_OK(w);
	EXPECT_GE(*w, 1u);
	EXPECT_LE(*w, 50u);
	auto rest = write_all(in.data, ByteSpan(stream).subspan(*w));
	ASSERT_OK(rest);
	EXPECT_GT(rest->writes, 2u) << "every write should have been short";
	ASSERT_OK(d.try_set_state(State::Stop));
	EXPECT_EQ(emu::digest(d), digest);
}

TEST_F(FaultDataFd, WriteCorruptIsRejectedByTheDestination)
{
	std::uint32_t digest = 0;
	Bytes stream = saved_stream(&digest);
	Device &d = dst();
	FaultGuard g(d.label());
	auto in = d.set_state(State::Resuming);
	nl()->add_fault(d.label(), first_call(Site::Write, Effect::Corrupt));
	auto w = write_all(in.data, stream);
	auto stop = d.try_set_state(State::Stop);
	EXPECT_TRUE(!w.ok() || !stop.ok()) << "a corrupted stream was accepted";
	if (!w.ok()) {
		EXPECT_EQ(errno_name(w.err()), "EINVAL") << w.describe();
	}
	if (!stop.ok()) {
		EXPECT_EQ(errno_name(stop.err()), "EINVAL");
		EXPECT_EQ(state_name(d.get_state()), "ERROR") << "RESUMING->STOP that failed";
	}
}

} // namespace
} // namespace vfiomig::test
