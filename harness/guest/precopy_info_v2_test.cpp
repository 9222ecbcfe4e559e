// With the PRECOPY_INFOv2 opt-in, a reconfiguration during precopy is reported once as VFIO_PRECOPY_INFO_REINIT.
#include "common.hpp"

namespace vfiomig::test {
namespace {

// The opt-in lasts as long as the device fd, so these tests use their own
// instance (slot 2) and never share it with the v1 tests. A foreign target
// has no third instance: its source is used and closed after the test (the
// next test opens it again, without the opt-in).
class PrecopyInfoV2 : public ProfileTest {
protected:
	void SetUp() override
	{
		ProfileTest::SetUp();
		if (IsSkipped() || HasFatalFailure())
			return;
		REQUIRE_MIG_FLAG(kMigPreCopy);
		REQUIRE_CAP(precopy_info_v2, "MIG_PRECOPY_INFOv2");
		slot_ = target().foreign() ? 0 : 2;
		v2_ = &pool(target(), slot_).dev;
		opted_in_ = true;
		ASSERT_OK(v2_->try_reset());
		auto r = v2_->try_precopy_v2_opt_in();
		if (r.err() == ENOTTY)
			GTEST_SKIP() << "VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 not supported: " << r.describe();
		ASSERT_OK(r);
	}
	void TearDown() override
	{
		ProfileTest::TearDown();
		if (opted_in_ && target().foreign())
			release_instance(target(), slot_);
	}
	Device &v2() { return *v2_; }

private:
	Device *v2_ = nullptr;
	int slot_ = 2;
	bool opted_in_ = false;
};

TEST_P(PrecopyInfoV2, FlagsBecomeAnOutput)
{
	auto s = v2().set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	auto info = s.data.precopy_info(0x80000000u);
	ASSERT_OK(info);
	EXPECT_EQ(info->flags & 0x80000000u, 0u) << "an input bit came back: flags are not an output";
	EXPECT_EQ(info->flags & ~VFIO_PRECOPY_INFO_REINIT, 0u) << "undefined flags reported";
}

TEST_P(PrecopyInfoV2, ReconfigurationReportsReinitOnce)
{
	REQUIRE_EMU("reconfiguration doorbell");
	Device &dev = v2();
	ASSERT_OK(emu::scribble(dev, 81, 4));
	auto s = dev.set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	Bytes stream;
	ASSERT_OK(pump(s.data, nullptr, {PumpUntil::NoMsg, {}, {}, &stream}));
	auto idle = s.data.precopy_info();
	ASSERT_OK(idle);
	EXPECT_EQ(idle->flags, 0u);
	EXPECT_EQ(idle->initial_bytes, 0u);

	ASSERT_OK(emu::write_pattern(dev, 0, VFIO_MIG_EMU_PAGE_SIZE, 82)); // dirty, then reconfigure
	ASSERT_OK(emu::reconfigure(dev, 2));
	auto re = s.data.precopy_info();
	ASSERT_OK(re);
	EXPECT_EQ(re->flags, VFIO_PRECOPY_INFO_REINIT) << "reconfiguration during precopy not reported";
	EXPECT_GT(re->initial_bytes, 0u) << "REINIT without new initial data";
	EXPECT_EQ(re->dirty_bytes, 0u) << "dirty_bytes must restart from zero at REINIT";
	auto again = s.data.precopy_info();
	ASSERT_OK(again);
	EXPECT_EQ(again->flags, 0u) << "REINIT reported twice for one reconfiguration";

	ASSERT_OK(pump(s.data, nullptr, {PumpUntil::NoMsg, {}, {}, &stream}));
	auto done = s.data.precopy_info();
	ASSERT_OK(done);
	EXPECT_EQ(done->initial_bytes, 0u);
	dev.set_state(State::StopCopy);
	ASSERT_OK(pump(s.data, nullptr, {PumpUntil::Eof, {}, {}, &stream}));
	ParsedStream p = parse_stream(stream, expect(dev));
	ASSERT_TRUE(p.ok()) << p.describe();
	auto model = DeviceModel::load(p);
	ASSERT_TRUE(model);
	EXPECT_EQ(model->digest(), emu::digest(dev)) << "the REINIT stream does not rebuild the device";
	EXPECT_EQ(model->resources.size(), emu::read_regs(dev).nr_resources);
}

TEST_P(PrecopyInfoV2, LegacySessionsNeverReportReinit)
{
	REQUIRE_EMU("reconfiguration doorbell");
	Device &dev = src(); // no opt-in on this fd
	auto s = dev.set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	ASSERT_OK(pump(s.data, nullptr, {PumpUntil::NoMsg, {}, {}, nullptr}));
	ASSERT_OK(emu::reconfigure(dev, 1));
	auto info = s.data.precopy_info(0);
	ASSERT_OK(info);
	EXPECT_EQ(info->flags, 0u) << "v1: flags are echoed, REINIT must not appear";
	EXPECT_EQ(info->initial_bytes, 0u) << "v1: new resources are dirty data, never initial data";
	EXPECT_GT(info->dirty_bytes, 0u) << "v1: new critical data is reported in dirty_bytes";
}

VFIOMIG_INSTANTIATE_PROFILES(PrecopyInfoV2);

} // namespace
} // namespace vfiomig::test
