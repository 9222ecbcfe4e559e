// Region writes that change device state fail EBUSY while the device must not change; reads always work.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class RegionAccess : public ProfileTest {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("BAR0/BAR2 register semantics");
		ProfileTest::SetUp();
	}
};

TEST_P(RegionAccess, WritesRefusedExactlyWhenStopped)
{
	Device &dev = src();
	for (State s : kAllStates) {
		if (!is_valid_state(s, flags()))
			continue;
		SCOPED_TRACE(state_name(s));
		ASSERT_OK(dev.try_reset());
		MigrationSession keep;
		if (s != State::Running) {
			auto r = dev.try_set_state(s);
			ASSERT_OK(r);
			keep = std::move(r.value());
		}
		bool running = s == State::Running || s == State::RunningP2P || s == State::PreCopy ||
			       s == State::PreCopyP2P;
		auto scratch = emu::write_scratch(dev, 1, 0xabcd);
		auto bar2 = emu::write_pattern(dev, 0, 64, 3);
		auto doorbell = emu::run_workload(dev, 1);
		if (running) {
			EXPECT_OK(scratch);
			EXPECT_OK(bar2);
			EXPECT_OK(doorbell);
		} else {
			EXPECT_ERRNO(scratch, EBUSY);
			EXPECT_ERRNO(bar2, EBUSY);
			EXPECT_ERRNO(doorbell, EBUSY);
		}
		EXPECT_OK(dev.try_read32(emu::kBar0, VFIO_MIG_EMU_REG_DIGEST));
		std::uint8_t page[64];
		EXPECT_OK(dev.try_region_read(emu::kBar2, 0, page));
	}
}

TEST_P(RegionAccess, IdentityRegistersMatchTheProfile)
{
	Device &dev = src();
	emu::Regs r = emu::read_regs(dev);
	EXPECT_EQ(r.magic, static_cast<std::uint32_t>(VFIO_MIG_EMU_MAGIC));
	EXPECT_EQ(r.layout_version, static_cast<std::uint32_t>(VFIO_MIG_EMU_REG_LAYOUT_VERSION));
	EXPECT_EQ(r.profile, static_cast<std::uint32_t>(profile()));
	EXPECT_EQ(r.state, static_cast<std::uint32_t>(State::Running));
	EXPECT_EQ(r.mem_size, static_cast<std::uint64_t>(VFIO_MIG_EMU_DEFAULT_MEM_SIZE));
	EXPECT_EQ(dev.region_info(emu::kBar0).size, static_cast<std::uint64_t>(VFIO_MIG_EMU_BAR0_SIZE));
	EXPECT_EQ(dev.region_info(emu::kBar2).size, r.mem_size);
	EXPECT_EQ(dev.region_info(emu::kConfigRegion).size, static_cast<std::uint64_t>(VFIO_MIG_EMU_CONFIG_SIZE));
}

VFIOMIG_INSTANTIATE_PROFILES(RegionAccess);

} // namespace
} // namespace vfiomig::test
