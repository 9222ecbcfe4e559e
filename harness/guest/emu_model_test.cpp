// The emulated device follows its specification exactly: a host model predicts its digest, and BAR0 access rules hold.
#include "fresh.hpp"

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

// The module keeps the digest's memory part as cached CRCs of pages and of
// 16-page chunks, refreshed where memory changed, taken from the MEM
// records it saves and loads (kmod/device.c).  A device of 3 chunks and a
// short fourth one (52 pages): every way of refreshing the cache must give
// the digest the host model computes over all of memory.
TEST_P(EmuModel, DigestIsExactWhateverItsCacheHolds)
{
	const std::uint64_t mem = 3 * 65536 + 4 * 4096;
	auto make = [&] {
		MdevInstance m = MdevInstance::create(profile());
		control::Knobs k;
		k.mem_size = mem;
		nl()->set_knobs(m.uuid(), k);
		Device d = open_device(m.sysfs_path());
		return std::unique_ptr<Fresh>(new Fresh{std::move(m), std::move(d)});
	};
	auto f = make();
	Device &dev = f->dev;
	ASSERT_EQ(emu::mem_size(dev), mem);
	DeviceModel m = emu::reset_model(emu::read_config(dev), mem);
	EXPECT_EQ(emu::digest(dev), m.digest()) << "never written";

	auto write = [&](std::uint64_t off, std::uint64_t len, std::uint32_t seed) {
		ASSERT_OK(emu::write_pattern(dev, off, len, seed));
		Bytes pat = emu::make_pattern(len, seed);
		std::copy(pat.begin(), pat.end(), m.memory.begin() + off);
	};
	write(65536 - 50, 100, 1); // the first two chunks
	EXPECT_EQ(emu::digest(dev), m.digest()) << "a write across a chunk boundary";
	EXPECT_EQ(emu::digest(dev), m.digest()) << "the same, from the cache";
	write(mem - 4096, 4096, 2); // the short last chunk
	write(4096 * 2, 10, 3);
	write(4096 * 2 + 4000, 96, 4); // the same page twice
	EXPECT_EQ(emu::digest(dev), m.digest()) << "writes to the short last chunk and one page twice";
	ASSERT_OK(emu::run_workload(dev, 200));
	emu::model_dirty(m, 200);
	EXPECT_EQ(emu::digest(dev), m.digest()) << "after 200 workload steps";

	// Saving takes the page CRCs from the MEM records it sends.
	ASSERT_OK(emu::run_workload(dev, 30));
	emu::model_dirty(m, 30);
	Bytes stream = save(dev);
	EXPECT_EQ(emu::digest(dev), m.digest()) << "after a STOP_COPY stream was saved";
	ParsedStream p = parse_stream(stream, {static_cast<std::uint32_t>(profile()), mem});
	ASSERT_TRUE(p.ok()) << p.describe();
	auto loaded = DeviceModel::load(p);
	ASSERT_TRUE(loaded);
	EXPECT_EQ(loaded->digest(), m.digest()) << "the stream's state";

	// Loading takes them from the MEM records it checks; END compares.
	auto g = make();
	auto r = g->dev.set_state(State::Resuming);
	ASSERT_TRUE(r.has_data());
	ASSERT_OK(load_stream(g->dev, r.data, stream)) << "the destination's digest disagrees with END";
	ASSERT_OK(g->dev.try_set_state(State::Stop));
	EXPECT_EQ(emu::digest(g->dev), m.digest()) << "the destination after loading";
	ASSERT_OK(dev.try_set_state(State::Running));
	write(4096 * 17, 8, 5); // the source again, after its save
	EXPECT_EQ(emu::digest(dev), m.digest()) << "a write after the save";

	dev.reset();
	EXPECT_EQ(emu::digest(dev), emu::reset_model(emu::read_config(dev), mem).digest()) << "after reset";
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
