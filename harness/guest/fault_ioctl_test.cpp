// Faults at the ioctl sites (PRECOPY_INFO, DATA_SIZE, RESET, OPEN, SET_STATE delay) do what their effect says.
#include "control_expect.hpp"

#include <chrono>

namespace vfiomig::test {
namespace {

using namespace control;
using Clock = std::chrono::steady_clock;

class FaultIoctl : public FullProfileTest {};

template <typename F>
auto elapsed(F &&fn)
{
	auto t0 = Clock::now();
	fn();
	return Clock::now() - t0;
}

TEST_F(FaultIoctl, SetStateDelaySlowsEveryMatchingArc)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	Fault f = fault(Site::SetState, Effect::Delay);
	f.to = static_cast<std::uint32_t>(State::Stop);
	f.delay_us = 100000;
	nl()->add_fault(dev.label(), f);
	EXPECT_GE(elapsed([&] { dev.set_state(State::Stop); }), kDelayFloor);
	EXPECT_EQ(state_name(dev.get_state()), "STOP") << "DELAY must not stop the transition";
	EXPECT_EQ(nl()->faults(dev.label()).at(0).hits, 1u) << "only the arc into STOP matches";
}

TEST_F(FaultIoctl, PrecopyInfoFailLeavesTheSessionUsable)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	auto s = dev.set_state(State::PreCopy);
	Fault f = first_call(Site::PrecopyInfo, Effect::Fail);
	f.err = EAGAIN;
	nl()->add_fault(dev.label(), f);
	EXPECT_ERRNO(s.data.precopy_info(), EAGAIN);
	EXPECT_EQ(state_name(dev.get_state()), "PRE_COPY");
	EXPECT_OK(s.data.precopy_info());
}

TEST_F(FaultIoctl, PrecopyInfoFailToErrorNeedsAReset)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	auto s = dev.set_state(State::PreCopy);
	nl()->add_fault(dev.label(), first_call(Site::PrecopyInfo, Effect::FailToError));
	EXPECT_ERRNO(s.data.precopy_info(), EIO) << "EIO is the default errno";
	EXPECT_EQ(state_name(dev.get_state()), "ERROR");
	EXPECT_ERRNO(dev.try_set_state(State::Running), EINVAL);
	ASSERT_OK(dev.try_reset());
	EXPECT_EQ(state_name(dev.get_state()), "RUNNING");
}

TEST_F(FaultIoctl, PrecopyInfoDelayTakesAtLeastTheDelay)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	auto s = dev.set_state(State::PreCopy);
	Fault f = first_call(Site::PrecopyInfo, Effect::Delay);
	f.delay_us = 100000;
	nl()->add_fault(dev.label(), f);
	EXPECT_GE(elapsed([&] { EXPECT_OK(s.data.precopy_info()); }), kDelayFloor);
}

TEST_F(FaultIoctl, GarbagePrecopySizesDoNotBreakTheMigration)
{
	Device &s = src();
	Device &d = dst();
	FaultGuard g(s.label());
	ASSERT_OK(emu::scribble(s, 401, 6));
	auto out = s.set_state(State::PreCopy);
	nl()->add_fault(s.label(), fault(Site::PrecopyInfo, Effect::GarbageSize));
	auto info = out.data.precopy_info();
	ASSERT_OK(info);
	EXPECT_EQ(info->initial_bytes, UINT64_MAX);
	EXPECT_EQ(info->dirty_bytes, UINT64_MAX);
	// A consumer that trusted these sizes would wait forever or allocate
	// 16 EiB; the data fd itself still tells the truth.
	auto in = d.set_state(State::Resuming);
	ASSERT_OK(pump(out.data, &in.data, {PumpUntil::NoMsg, {}, {}, nullptr}));
	s.set_state(State::StopCopy);
	ASSERT_OK(pump(out.data, &in.data, {PumpUntil::Eof, {}, {}, nullptr}));
	ASSERT_OK(d.try_set_state(State::Stop));
	EXPECT_EQ(emu::digest(d), emu::digest(s));
}

TEST_F(FaultIoctl, DataSizeFailChangesNothing)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	Fault f = first_call(Site::DataSize, Effect::Fail);
	f.err = ENOMEM;
	nl()->add_fault(dev.label(), f);
	EXPECT_ERRNO(dev.try_stop_copy_size(), ENOMEM);
	EXPECT_EQ(state_name(dev.get_state()), "RUNNING");
	EXPECT_OK(dev.try_stop_copy_size());
}

TEST_F(FaultIoctl, DataSizeFailToErrorNeedsAReset)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	nl()->add_fault(dev.label(), first_call(Site::DataSize, Effect::FailToError));
	EXPECT_ERRNO(dev.try_stop_copy_size(), EIO);
	EXPECT_EQ(state_name(dev.get_state()), "ERROR");
	ASSERT_OK(dev.try_reset());
	EXPECT_EQ(state_name(dev.get_state()), "RUNNING");
}

TEST_F(FaultIoctl, DataSizeDelayTakesAtLeastTheDelay)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	Fault f = first_call(Site::DataSize, Effect::Delay);
	f.delay_us = 100000;
	nl()->add_fault(dev.label(), f);
	EXPECT_GE(elapsed([&] { EXPECT_OK(dev.try_stop_copy_size()); }), kDelayFloor);
}

TEST_F(FaultIoctl, GarbageDataSizeDoesNotBreakTheMigration)
{
	Device &s = src();
	Device &d = dst();
	FaultGuard g(s.label());
	ASSERT_OK(emu::scribble(s, 402, 6));
	nl()->add_fault(s.label(), fault(Site::DataSize, Effect::GarbageSize));
	auto size = s.try_stop_copy_size();
	ASSERT_OK(size);
	EXPECT_EQ(*size, UINT64_MAX);
	Bytes stream = save(s);
	EXPECT_LT(stream.size(), 1u << 24) << "the stream is what it is, whatever the size said";
	auto in = d.set_state(State::Resuming);
	ASSERT_OK(write_all(in.data, stream));
	ASSERT_OK(d.try_set_state(State::Stop));
	EXPECT_EQ(emu::digest(d), emu::digest(s));
}

TEST_F(FaultIoctl, ResetFailLeavesTheStateUnchanged)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	dev.set_state(State::Stop);
	Fault f = first_call(Site::Reset, Effect::Fail);
	f.err = EBUSY;
	nl()->add_fault(dev.label(), f);
	EXPECT_ERRNO(dev.try_reset(), EBUSY);
	EXPECT_EQ(state_name(dev.get_state()), "STOP");
	ASSERT_OK(dev.try_reset());
	EXPECT_EQ(state_name(dev.get_state()), "RUNNING");
}

TEST_F(FaultIoctl, ResetFailToErrorIsLeftByTheNextReset)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	nl()->add_fault(dev.label(), first_call(Site::Reset, Effect::FailToError));
	EXPECT_ERRNO(dev.try_reset(), EIO);
	EXPECT_EQ(state_name(dev.get_state()), "ERROR");
	ASSERT_OK(dev.try_reset());
	EXPECT_EQ(state_name(dev.get_state()), "RUNNING");
}

TEST_F(FaultIoctl, ResetDelayTakesAtLeastTheDelay)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	Fault f = first_call(Site::Reset, Effect::Delay);
	f.delay_us = 100000;
	nl()->add_fault(dev.label(), f);
	EXPECT_GE(elapsed([&] { EXPECT_OK(dev.try_reset()); }), kDelayFloor);
}

TEST_F(FaultIoctl, OpenFailRefusesTheDeviceFdOnce)
{
	MdevInstance fresh = MdevInstance::create(Profile::Full);
	Fault f = first_call(Site::Open, Effect::Fail);
	f.err = EACCES;
	nl()->add_fault(fresh.uuid(), f);
	int err = 0;
	try {
		Device dev = open_device(fresh.sysfs_path());
	} catch (const Error &e) {
		err = e.err();
	}
	EXPECT_EQ(errno_name(err), "EACCES");
	Device dev = open_device(fresh.sysfs_path());
	EXPECT_EQ(state_name(dev.get_state()), "RUNNING");
}

TEST_F(FaultIoctl, OpenDelayTakesAtLeastTheDelay)
{
	MdevInstance fresh = MdevInstance::create(Profile::Full);
	Fault f = first_call(Site::Open, Effect::Delay);
	f.delay_us = 100000;
	nl()->add_fault(fresh.uuid(), f);
	EXPECT_GE(elapsed([&] { Device dev = open_device(fresh.sysfs_path()); }),
		  kDelayFloor);
}

TEST_F(FaultIoctl, EffectsASiteCannotCarryOutAreRefused)
{
	const std::string &u = src().label();
	FaultGuard g(u);
	for (Site s : kAllSites) {
		for (Effect e : kAllEffects) {
			if (effect_allowed(s, e))
				continue;
			SCOPED_TRACE(site_name(s) + " " + effect_name(e));
			EXPECT_CONTROL_ERROR(nl()->add_fault(u, fault(s, e)), EINVAL, "not possible");
		}
	}
	EXPECT_TRUE(nl()->faults(u).empty());
}

TEST_F(FaultIoctl, FaultAttributesOutsideTheirRoleAreRefused)
{
	const std::string &u = src().label();
	FaultGuard g(u);
	Fault f = fault(Site::Read, Effect::Fail);
	f.from = 1;
	EXPECT_CONTROL_ERROR(nl()->add_fault(u, f), EINVAL, "SET_STATE only");
	f = fault(Site::Read, Effect::Delay);
	EXPECT_CONTROL_ERROR(nl()->add_fault(u, f), EINVAL, "DELAY_US");
	f.delay_us = 1;
	f.err = EIO;
	EXPECT_CONTROL_ERROR(nl()->add_fault(u, f), EINVAL, "ERRNO");
	f = fault(Site::Read, Effect::Fail);
	f.trigger = Trigger::Random;
	EXPECT_CONTROL_ERROR(nl()->add_fault(u, f), EINVAL, "PROBABILITY_PPM");
	f.probability_ppm = 1000001;
	EXPECT_CONTROL_ERROR(nl()->add_fault(u, f), ERANGE, "range");
	f = fault(Site::Read, Effect::Fail);
	f.trigger = Trigger::Nth;
	EXPECT_CONTROL_ERROR(nl()->add_fault(u, f), EINVAL, "FAULT_N");
	f.n = 0;
	EXPECT_CONTROL_ERROR(nl()->add_fault(u, f), ERANGE, "");
	f = fault(Site::Read, Effect::Fail);
	f.err = 4096;
	EXPECT_CONTROL_ERROR(nl()->add_fault(u, f), ERANGE, "");
	f = fault(Site::SetState, Effect::Fail);
	f.to = 0;
	EXPECT_CONTROL_ERROR(nl()->add_fault(u, f), EINVAL, "TO_STATE");
	EXPECT_TRUE(nl()->faults(u).empty());
}

} // namespace
} // namespace vfiomig::test
