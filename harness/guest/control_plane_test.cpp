// The control plane's view of a device agrees with the vfio uAPI's.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class ControlPlane : public ProfileTest {};

TEST_P(ControlPlane, DevGetMirrorsTheDevice)
{
	REQUIRE_CONTROL();
	Device &dev = src();
	ASSERT_OK(emu::scribble(dev, 101, 3));
	auto info = nl()->device(dev.label(), {.digest = true});
	EXPECT_EQ(info.uuid, dev.label());
	EXPECT_EQ(info.profile, static_cast<std::uint32_t>(profile()));
	EXPECT_EQ(info.state, static_cast<std::uint32_t>(State::Running));
	EXPECT_TRUE(info.open);
	ASSERT_TRUE(info.digest.has_value()) << "DEV_GET asked for the digest and got none";
	EXPECT_EQ(*info.digest, emu::digest(dev));
	EXPECT_EQ(info.mem_size, emu::mem_size(dev));
	EXPECT_EQ(info.sessions, 0u);
	auto s = dev.set_state(State::StopCopy);
	auto during = nl()->device(dev.label());
	EXPECT_EQ(during.state, static_cast<std::uint32_t>(State::StopCopy));
	EXPECT_EQ(during.sessions, 1u);
	EXPECT_EQ(during.precopy.stop_copy_bytes, dev.stop_copy_size());
}

TEST_P(ControlPlane, UnknownDeviceIsEnodevAndBadUuidEinval)
{
	REQUIRE_CONTROL();
	auto errno_of = [](const std::string &uuid) {
		try {
			nl()->device(uuid);
			return 0;
		} catch (const Error &e) {
			return e.err();
		}
	};
	EXPECT_EQ(errno_name(errno_of("00000000-0000-0000-0000-000000000000")), "ENODEV");
	EXPECT_EQ(errno_name(errno_of("not-a-uuid")), "EINVAL");
}

TEST_P(ControlPlane, ShortIoFaultsStillMigrateExactly)
{
	REQUIRE_CONTROL();
	Device &s = src();
	Device &d = dst();
	FaultGuard gs(s.label()), gd(d.label());
	ASSERT_OK(emu::scribble(s, 111, 8));
	control::Fault half;
	half.effect = control::Effect::ShortIo;
	half.site = control::Site::Read;
	nl()->add_fault(s.label(), half);
	half.site = control::Site::Write;
	nl()->add_fault(d.label(), half);
	auto out = s.set_state(State::StopCopy);
	auto in = d.set_state(State::Resuming);
	auto p = pump(out.data, &in.data, {PumpUntil::Eof, {}, {}, nullptr});
	ASSERT_OK(p);
	EXPECT_GT(p->writes, p->reads) << "short writes were not retried";
	ASSERT_OK(d.try_set_state(State::Running));
	EXPECT_EQ(emu::digest(d), emu::digest(s));
}

TEST_P(ControlPlane, CorruptedReadIsCaughtByTheDestination)
{
	REQUIRE_CONTROL();
	Device &s = src();
	Device &d = dst();
	FaultGuard gs(s.label());
	ASSERT_OK(emu::scribble(s, 121, 4));
	control::Fault f;
	f.site = control::Site::Read;
	f.effect = control::Effect::Corrupt;
	f.trigger = control::Trigger::Nth;
	f.n = 2;
	nl()->add_fault(s.label(), f);
	auto out = s.set_state(State::StopCopy);
	auto in = d.set_state(State::Resuming);
	auto p = pump(out.data, &in.data, {PumpUntil::Eof, {4096}, {}, nullptr});
	auto stop = d.try_set_state(State::Stop);
	EXPECT_FALSE(p.ok() && stop.ok()) << "a corrupted stream was loaded";
	ASSERT_OK(d.try_reset());
}

VFIOMIG_INSTANTIATE_PROFILES(ControlPlane);

} // namespace
} // namespace vfiomig::test
