// The PRECOPY_INFOv2 opt-in counts from the query after it, also for a precopy session that started before it.
#include "common.hpp"
#include "fresh.hpp"

namespace vfiomig::test {
namespace {

// 0xdead has bit 0 (REINIT) and undefined bits set: an echo shows.
constexpr std::uint32_t kJunkFlags = 0xdead;

// A device whose fd has not opted in yet: a fresh instance on the
// emulated device (the opt-in dies with it), the source on a foreign
// target (closed after the test, so the next test opens it without it).
class PrecopyInfoV2LateOptIn : public ProfileTest {
protected:
	void SetUp() override
	{
		ProfileTest::SetUp();
		if (IsSkipped() || HasFatalFailure())
			return;
		REQUIRE_MIG_FLAG(kMigPreCopy);
		REQUIRE_CAP(precopy_info_v2, "MIG_PRECOPY_INFOv2");
		if (target().foreign()) {
			dev_ = &src();
			release_ = true;
		} else {
			fresh_ = Fresh::make(profile());
			dev_ = &fresh_->dev;
		}
	}
	void TearDown() override
	{
		fresh_.reset();
		ProfileTest::TearDown();
		if (release_)
			release_instance(target(), 0);
	}
	Device &dev() { return *dev_; }

private:
	std::unique_ptr<Fresh> fresh_;
	Device *dev_ = nullptr;
	bool release_ = false;
};

TEST_P(PrecopyInfoV2LateOptIn, FlagsBecomeAnOutputAtTheNextQuery)
{
	auto s = dev().set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	auto before = s.data.precopy_info(kJunkFlags);
	ASSERT_OK(before);
	EXPECT_EQ(before->flags, kJunkFlags) << "without the opt-in flags are echoed";

	ASSERT_OK(dev().try_precopy_v2_opt_in());
	auto after = s.data.precopy_info(kJunkFlags);
	ASSERT_OK(after);
	EXPECT_NE(after->flags, kJunkFlags) << "flags echoed after the opt-in: it was latched at session start";
	EXPECT_EQ(after->flags & ~VFIO_PRECOPY_INFO_REINIT, 0u)
		<< "with the opt-in flags are an output; 0x" << std::hex << after->flags;
	if (emulated()) {
		EXPECT_EQ(after->flags, 0u) << "REINIT reported with no new initial data";
	}
}

TEST_P(PrecopyInfoV2LateOptIn, FlagsStayAnOutputInPreCopyP2P)
{
	REQUIRE_MIG_FLAG(kMigP2P);
	auto s = dev().set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	ASSERT_OK(dev().try_precopy_v2_opt_in());
	dev().set_state(State::PreCopyP2P);
	auto info = s.data.precopy_info(kJunkFlags);
	ASSERT_OK(info);
	EXPECT_EQ(info->flags & ~VFIO_PRECOPY_INFO_REINIT, 0u)
		<< "flags echoed in PRE_COPY_P2P after an opt-in made in PRE_COPY; 0x" << std::hex << info->flags;
}

TEST_P(PrecopyInfoV2LateOptIn, ReconfigurationAfterTheOptInReportsReinit)
{
	REQUIRE_EMU("reconfiguration doorbell");
	auto s = dev().set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	ASSERT_OK(pump(s.data, nullptr, {PumpUntil::NoMsg, {}, {}, nullptr}));
	ASSERT_OK(dev().try_precopy_v2_opt_in());
	auto idle = s.data.precopy_info();
	ASSERT_OK(idle);
	EXPECT_EQ(idle->flags, 0u);
	EXPECT_EQ(idle->initial_bytes, 0u);

	ASSERT_OK(emu::reconfigure(dev(), 2));
	auto re = s.data.precopy_info();
	ASSERT_OK(re);
	EXPECT_EQ(re->flags, VFIO_PRECOPY_INFO_REINIT)
		<< "a reconfiguration after the opt-in is new initial data: the session kept v1 rules";
	EXPECT_GT(re->initial_bytes, 0u) << "REINIT without new initial data";
	EXPECT_EQ(re->dirty_bytes, 0u) << "dirty_bytes must restart from zero at REINIT";
}

VFIOMIG_INSTANTIATE_PROFILES(PrecopyInfoV2LateOptIn);

} // namespace
} // namespace vfiomig::test
