// BAR2's region size is the power of two config-space BAR sizing reports, whatever the device memory size; the tail past the memory reads zero and ignores writes.
#include <bit>

#include <linux/pci_regs.h>

#include "common.hpp"

namespace vfiomig::test {
namespace {

constexpr std::uint64_t kPage = VFIO_MIG_EMU_PAGE_SIZE;

/// A fresh full-profile instance with MEM_SIZE set before it is opened.
struct Sized {
	MdevInstance mdev;
	Device dev; ///< declared last: closed before the instance is removed
};

std::unique_ptr<Sized> make_sized(std::uint64_t mem_size)
{
	MdevInstance m = MdevInstance::create(Profile::StopCopy);
	control::Knobs k;
	k.mem_size = mem_size;
	nl()->set_knobs(m.uuid(), k);
	Device d = open_device(m.sysfs_path());
	return std::unique_ptr<Sized>(new Sized{std::move(m), std::move(d)});
}

/// The size config-space BAR sizing gives for BAR2: all ones written to
/// the BAR (both halves of a 64-bit BAR), read back, flags masked.
std::uint64_t config_bar2_size(Device &dev)
{
	std::uint32_t lo0 = dev.read32(emu::kConfigRegion, PCI_BASE_ADDRESS_2);
	bool is64 = (lo0 & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64;
	dev.write32(emu::kConfigRegion, PCI_BASE_ADDRESS_2, 0xffffffffu);
	std::uint64_t mask = dev.read32(emu::kConfigRegion, PCI_BASE_ADDRESS_2) & PCI_BASE_ADDRESS_MEM_MASK;
	if (is64) {
		dev.write32(emu::kConfigRegion, PCI_BASE_ADDRESS_3, 0xffffffffu);
		mask |= std::uint64_t{dev.read32(emu::kConfigRegion, PCI_BASE_ADDRESS_3)} << 32;
	} else {
		mask |= 0xffffffff00000000ull;
	}
	return ~mask + 1;
}

class Bar2Size : public ::testing::Test {
protected:
	void SetUp() override
	{
		REQUIRE_CONTROL();
		if (!module_loaded())
			GTEST_SKIP() << "vfio_mig_emu is not loaded";
	}
};

TEST_F(Bar2Size, RegionSizeIsThePowerOfTwoTheConfigSpaceReports)
{
	for (std::uint64_t mem : {kPage, 3 * kPage, 5 * kPage, 17 * kPage, 256 * kPage}) {
		SCOPED_TRACE("mem_size " + std::to_string(mem));
		auto s = make_sized(mem);
		ASSERT_EQ(emu::mem_size(s->dev), mem) << "MEM_SIZE knob not applied";
		std::uint64_t region = s->dev.region_info(emu::kBar2).size;
		std::uint64_t sized = config_bar2_size(s->dev);
		EXPECT_EQ(sized, std::bit_ceil(mem)) << "config-space BAR2 sizing";
		EXPECT_TRUE(std::has_single_bit(region)) << "REGION_INFO reports " << region
							 << " for BAR2: a PCI BAR is a power of two";
		EXPECT_EQ(region, sized) << "REGION_INFO and config-space BAR sizing disagree on BAR2";
	}
}

TEST_F(Bar2Size, TailPastTheMemoryReadsZeroAndIgnoresWrites)
{
	constexpr std::uint64_t mem = 3 * kPage; // BAR2 is 4 pages
	auto s = make_sized(mem);
	Device &dev = s->dev;
	ASSERT_OK(emu::write_pattern(dev, 0, mem, 7));
	std::uint32_t digest = emu::digest(dev);

	Bytes junk(kPage, 0x5a);
	ASSERT_NO_THROW(dev.region_write(emu::kBar2, mem, junk)) << "a write to the BAR's tail must be accepted";
	Bytes tail(kPage, 0xff);
	ASSERT_NO_THROW(dev.region_read(emu::kBar2, mem, tail));
	EXPECT_EQ(tail, Bytes(kPage, 0)) << "the tail past the device memory must read zero";
	EXPECT_EQ(emu::digest(dev), digest) << "a write to the tail changed the device state";

	// An access straddling the end of the memory: the memory part is real.
	Bytes across(16, 0);
	ASSERT_NO_THROW(dev.region_read(emu::kBar2, mem - 8, across));
	Bytes want = emu::make_pattern(mem, 7);
	EXPECT_TRUE(std::equal(across.begin(), across.begin() + 8, want.end() - 8));
	EXPECT_EQ(Bytes(across.begin() + 8, across.end()), Bytes(8, 0));

	// Past the BAR: refused.
	std::uint8_t b[4];
	EXPECT_ERRNO(dev.try_region_read(emu::kBar2, 4 * kPage, b), EINVAL);

	// The stream still carries the memory only: its header says mem_size.
	auto sess = dev.set_state(State::StopCopy);
	ASSERT_TRUE(sess.has_data());
	Bytes stream;
	ASSERT_OK(pump(sess.data, nullptr, {PumpUntil::Eof, {}, {}, &stream}));
	ParsedStream p = parse_stream(stream, StreamExpect{static_cast<std::uint32_t>(Profile::StopCopy), mem});
	ASSERT_TRUE(p.ok()) << p.describe();
	auto model = DeviceModel::load(p);
	ASSERT_TRUE(model);
	EXPECT_EQ(model->digest(), digest) << "the stream does not rebuild the device";
}

} // namespace
} // namespace vfiomig::test
