// The emulated device follows its specification exactly: a host model predicts its digest, and BAR0 access rules hold.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class EmuModel : public ProfileTest {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("device model (registers, workload PRNG, digest)");
		ProfileTest::SetUp();
	}
};

TEST_P(EmuModel, DigestOfAResetDeviceIsPredicted)
{
	Device &dev = src();
	DeviceModel m = emu::reset_model(emu::read_config(dev), emu::mem_size(dev));
	EXPECT_EQ(emu::digest(dev), m.digest());
	EXPECT_EQ(m.config[0] | m.config[1] << 8, VFIO_MIG_EMU_PCI_VENDOR_ID);
	EXPECT_EQ(m.config[2] | m.config[3] << 8, VFIO_MIG_EMU_PCI_DEVICE_ID);
}

TEST_P(EmuModel, WorkloadFollowsTheSpecifiedPrng)
{
	Device &dev = src();
	DeviceModel m = emu::reset_model(emu::read_config(dev), emu::mem_size(dev));
	for (std::uint32_t steps : {1u, 7u, 300u}) {
		ASSERT_OK(emu::run_workload(dev, steps));
		emu::model_dirty(m, steps);
		EXPECT_EQ(emu::digest(dev), m.digest()) << "after " << steps << " more dirty steps";
	}
	ASSERT_OK(emu::reconfigure(dev, 3));
	emu::model_reconfigure(m, 3);
	EXPECT_EQ(emu::read_regs(dev).nr_resources, 3u);
	EXPECT_EQ(emu::digest(dev), m.digest()) << "after 3 resources";
	ASSERT_OK(emu::write_scratch(dev, 5, 0x12345678));
	m.scratch[5] = 0x12345678;
	ASSERT_OK(emu::write_pattern(dev, 4096 * 3 + 10, 100, 9));
	Bytes pat = emu::make_pattern(100, 9);
	std::copy(pat.begin(), pat.end(), m.memory.begin() + 4096 * 3 + 10);
	EXPECT_EQ(emu::digest(dev), m.digest()) << "after scratch and BAR2 writes";
	// The stream rebuilds the same state.
	Bytes stream = save(dev);
	ParsedStream p = parse_stream(stream, expect(dev));
	ASSERT_TRUE(p.ok()) << p.describe();
	auto loaded = DeviceModel::load(p);
	ASSERT_TRUE(loaded);
	EXPECT_EQ(loaded->workload_prng, m.workload_prng);
	EXPECT_EQ(loaded->digest(), m.digest());
}

TEST_P(EmuModel, Bar0AccessRules)
{
	Device &dev = src();
	std::uint8_t two[2] = {1, 2};
	std::uint8_t eight[8] = {};
	EXPECT_ERRNO(dev.try_region_write(emu::kBar0, VFIO_MIG_EMU_REG_SCRATCH, two), EINVAL);
	EXPECT_ERRNO(dev.try_region_read(emu::kBar0, VFIO_MIG_EMU_REG_SCRATCH, eight), EINVAL);
	EXPECT_ERRNO(dev.try_write32(emu::kBar0, VFIO_MIG_EMU_REG_SCRATCH + 2, 1), EINVAL);
	EXPECT_ERRNO(dev.try_write32(emu::kBar0, VFIO_MIG_EMU_REG_DIGEST, 1), EINVAL);  // read-only register
	EXPECT_ERRNO(dev.try_write32(emu::kBar0, 0x800, 1), EINVAL);  // unimplemented offset
	EXPECT_EQ(dev.read32(emu::kBar0, 0x800), 0u);
	EXPECT_EQ(dev.read32(emu::kBar0, VFIO_MIG_EMU_REG_DIRTY_DOORBELL), 0u);
	EXPECT_ERRNO(emu::run_workload(dev, VFIO_MIG_EMU_MAX_DIRTY_STEPS + 1), EINVAL);
	std::uint32_t before = emu::digest(dev);
	EXPECT_ERRNO(emu::reconfigure(dev, VFIO_MIG_EMU_MAX_RESOURCES + 1), ENOSPC);
	EXPECT_EQ(emu::read_regs(dev).nr_resources, 0u) << "a refused reconfigure added resources";
	EXPECT_EQ(emu::digest(dev), before);
	std::uint8_t one = 0;
	EXPECT_ERRNO(dev.try_region_read(emu::kBar2, emu::mem_size(dev), {&one, 1}), EINVAL); // past BAR2
	// Across the end of config space.
	EXPECT_ERRNO(dev.try_region_write(emu::kConfigRegion, VFIO_MIG_EMU_CONFIG_SIZE - 1, two), EINVAL);
}

VFIOMIG_INSTANTIATE_PROFILES(EmuModel);

} // namespace
} // namespace vfiomig::test
