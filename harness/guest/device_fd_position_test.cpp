// Plain read() and write() on the device fd advance the file position by the bytes transferred, as vfio-pci and mtty do.
//
// What a consumer can observe: the vfio core passes the file's own f_pos
// to the driver's read/write for read(2)/write(2) (and a private one for
// pread/pwrite). The device fd has no llseek (lseek() is ESPIPE on the
// group and cdev paths alike) and f_pos starts at 0, which is BAR0 offset
// 0 in the vfio-pci region layout: consecutive read()s walk the BAR0
// registers only if the driver moves *ppos.
#include <unistd.h>

#include "common.hpp"
#include "fresh.hpp"

namespace vfiomig::test {
namespace {

class DeviceFdPosition : public ::testing::Test {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("BAR0 register layout and a fresh device fd");
		if (!module_loaded())
			GTEST_SKIP() << "vfio_mig_emu is not loaded";
		SKIP_UNLESS_OFFERED(Profile::StopCopy);
		a_ = Fresh::make(Profile::StopCopy);
	}
	int fd() { return a_->dev.fd().get(); }
	Device &dev() { return a_->dev; }
	/// read(2) of one 32-bit register at the current file position.
	std::uint32_t read_next()
	{
		std::uint32_t v = 0;
		ssize_t n = ::read(fd(), &v, sizeof(v));
		EXPECT_EQ(n, 4) << "read() on the device fd: " << (n < 0 ? errno_name(errno) : std::to_string(n));
		return v;
	}
	std::unique_ptr<Fresh> a_;
};

TEST_F(DeviceFdPosition, ConsecutiveReadsWalkTheRegisters)
{
	EXPECT_EQ(read_next(), static_cast<std::uint32_t>(VFIO_MIG_EMU_MAGIC)) << "f_pos 0 is BAR0 MAGIC";
	EXPECT_EQ(read_next(), static_cast<std::uint32_t>(VFIO_MIG_EMU_REG_LAYOUT_VERSION))
		<< "the second read() did not continue at offset 4: *ppos was not advanced";
	EXPECT_EQ(read_next(), static_cast<std::uint32_t>(Profile::StopCopy)) << "third read(): PROFILE";
}

TEST_F(DeviceFdPosition, RefusedReadLeavesThePosition)
{
	EXPECT_EQ(read_next(), static_cast<std::uint32_t>(VFIO_MIG_EMU_MAGIC));
	std::uint16_t half = 0;
	EXPECT_EQ(::read(fd(), &half, sizeof(half)), -1) << "a 2-byte BAR0 read must be refused";
	EXPECT_EQ(errno, EINVAL);
	EXPECT_EQ(read_next(), static_cast<std::uint32_t>(VFIO_MIG_EMU_REG_LAYOUT_VERSION))
		<< "a refused read() moved the position";
}

TEST_F(DeviceFdPosition, WriteAdvancesThePositionAndPreadDoesNot)
{
	// Walk to SCRATCH[0] with read()s, write() it, then read() SCRATCH[1].
	ASSERT_OK(emu::write_scratch(dev(), 1, 0x1111));
	for (std::uint32_t off = 0; off < VFIO_MIG_EMU_REG_SCRATCH; off += 4) {
		std::uint32_t v = 0;
		ASSERT_EQ(::read(fd(), &v, sizeof(v)), 4) << "read() at BAR0 +" << off << ": " << errno_name(errno);
	}
	std::uint32_t val = 0xfeedf00d;
	ASSERT_EQ(::write(fd(), &val, sizeof(val)), 4) << "write() to SCRATCH[0]: " << errno_name(errno);
	EXPECT_EQ(emu::read_scratch(dev(), 0).value(), val) << "write() did not land on SCRATCH[0]";
	// pread() has its own position: it must not move the file's.
	std::uint32_t magic = 0;
	ASSERT_EQ(::pread(fd(), &magic, sizeof(magic), 0), 4);
	EXPECT_EQ(read_next(), 0x1111u) << "the read() after write() is not SCRATCH[1]: write() did not advance *ppos";
}

TEST_F(DeviceFdPosition, LseekIsRefused)
{
	// Documents the other half of what a consumer sees: no llseek, so the
	// position only moves through read()/write().
	EXPECT_EQ(::lseek(fd(), 0, SEEK_CUR), -1);
	EXPECT_EQ(errno, ESPIPE);
}

} // namespace
} // namespace vfiomig::test
