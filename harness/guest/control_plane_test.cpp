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
	auto info = nl()->dev_get(dev.label());
	ASSERT_OK(info);
	EXPECT_EQ(info->uuid, dev.label());
	EXPECT_EQ(info->profile, static_cast<std::uint32_t>(profile()));
	EXPECT_EQ(info->state, static_cast<std::uint32_t>(State::Running));
	EXPECT_TRUE(info->device_open);
	EXPECT_EQ(info->digest, emu::digest(dev));
	EXPECT_EQ(info->mem_size, emu::mem_size(dev));
	EXPECT_EQ(info->sessions, 0u);
	auto s = dev.set_state(State::StopCopy);
	auto during = nl()->dev_get(dev.label());
	ASSERT_OK(during);
	EXPECT_EQ(during->state, static_cast<std::uint32_t>(State::StopCopy));
	EXPECT_EQ(during->sessions, 1u);
	EXPECT_EQ(during->stop_copy_bytes, dev.stop_copy_size());
}

TEST_P(ControlPlane, UnknownDeviceIsEnodevAndBadUuidEinval)
{
	REQUIRE_CONTROL();
	EXPECT_ERRNO(nl()->dev_get("00000000-0000-0000-0000-000000000000"), ENODEV);
	EXPECT_ERRNO(nl()->dev_get("not-a-uuid"), EINVAL);
}

TEST_P(ControlPlane, ShortIoFaultsStillMigrateExactly)
{
	REQUIRE_CONTROL();
	Device &s = src();
	Device &d = dst();
	FaultGuard gs(s.label()), gd(d.label());
	ASSERT_OK(emu::scribble(s, 111, 8));
	FaultSpec half;
	half.effect = VFIO_MIG_EMU_EFFECT_SHORT_IO;
	half.site = VFIO_MIG_EMU_SITE_READ;
	ASSERT_OK(nl()->fault_add(s.label(), half));
	half.site = VFIO_MIG_EMU_SITE_WRITE;
	ASSERT_OK(nl()->fault_add(d.label(), half));
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
	FaultSpec f;
	f.site = VFIO_MIG_EMU_SITE_READ;
	f.effect = VFIO_MIG_EMU_EFFECT_CORRUPT;
	f.trigger = VFIO_MIG_EMU_TRIGGER_NTH;
	f.n = 2;
	ASSERT_OK(nl()->fault_add(s.label(), f));
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
