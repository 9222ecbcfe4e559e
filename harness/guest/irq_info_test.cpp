// The device offers the ERR and REQ IRQ indexes as vfio-pci does (one eventfd each), so QEMU enables error recovery and device requests.
#include <linux/pci_regs.h>

#include "irq.hpp"

namespace vfiomig::test {
namespace {

class DeviceIrqInfo : public ProfileTest {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("IRQ layout");
		ProfileTest::SetUp();
	}
};

TEST_P(DeviceIrqInfo, ErrAndReqOfferOneEventfdEach)
{
	struct vfio_device_info di = src().info();
	ASSERT_GE(di.num_irqs, static_cast<std::uint32_t>(VFIO_PCI_NUM_IRQS));
	for (std::uint32_t index : {VFIO_PCI_ERR_IRQ_INDEX, VFIO_PCI_REQ_IRQ_INDEX}) {
		SCOPED_TRACE(index == VFIO_PCI_ERR_IRQ_INDEX ? "ERR" : "REQ");
		auto i = irq::info(src(), index);
		ASSERT_OK(i);
		EXPECT_EQ(i->count, 1u) << "QEMU enables error recovery / device requests only with count 1";
		EXPECT_TRUE(i->flags & VFIO_IRQ_INFO_EVENTFD) << "flags 0x" << std::hex << i->flags;
		EXPECT_FALSE(i->flags & (VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED))
			<< "ERR/REQ cannot be masked (vfio-pci); flags 0x" << std::hex << i->flags;
	}
}

TEST_P(DeviceIrqInfo, NoInterruptPinAndNoMsiVectors)
{
	for (std::uint32_t index : {VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX}) {
		SCOPED_TRACE("index " + std::to_string(index));
		auto i = irq::info(src(), index);
		ASSERT_OK(i);
		EXPECT_EQ(i->count, 0u) << "the emulated device raises no interrupts";
	}
	EXPECT_EQ(emu::read_config(src())[PCI_INTERRUPT_PIN], 0) << "INTx pin with no INTx index";
	auto bad = irq::info(src(), VFIO_PCI_NUM_IRQS);
	EXPECT_ERRNO(bad, EINVAL);
}

VFIOMIG_INSTANTIATE_PROFILES(DeviceIrqInfo);

} // namespace
} // namespace vfiomig::test
