// Closing the device fd releases the eventfds registered on ERR and REQ: nothing is held, nothing survives into the next open.
#include "fresh.hpp"
#include "irq.hpp"

namespace vfiomig::test {
namespace {

class IrqRelease : public ::testing::Test {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("ERR/REQ triggers and the module's live counters");
		if (!module_loaded())
			GTEST_SKIP() << "vfio_mig_emu is not loaded";
		SKIP_UNLESS_OFFERED(Profile::StopCopy);
	}
};

TEST_F(IrqRelease, ClosingTheDeviceFdDropsEveryEventfd)
{
	auto base = irq::live_eventfds();
	ASSERT_TRUE(base) << "the module has no stats/live_eventfds counter";
	auto a = Fresh::make(Profile::StopCopy);
	{
		Fd err1 = irq::make_eventfd(), err2 = irq::make_eventfd(), req = irq::make_eventfd();
		ASSERT_EQ(irq::set_eventfd(a->dev, VFIO_PCI_ERR_IRQ_INDEX, err1.get()), 0);
		ASSERT_EQ(irq::set_eventfd(a->dev, VFIO_PCI_REQ_IRQ_INDEX, req.get()), 0);
		EXPECT_EQ(irq::live_eventfds(), *base + 2);
		ASSERT_EQ(irq::set_eventfd(a->dev, VFIO_PCI_ERR_IRQ_INDEX, err2.get()), 0);
		EXPECT_EQ(irq::live_eventfds(), *base + 2) << "replacing a trigger leaked the old eventfd";
		// The user closes its eventfds first: the device holds its own references.
	}
	EXPECT_EQ(irq::set(a->dev, irq::kNone | irq::kTrigger, VFIO_PCI_ERR_IRQ_INDEX, 0, 1), 0)
		<< "signalling an eventfd whose fd the user closed";

	// Close the device fd with both triggers registered.
	std::string path = a->mdev->sysfs_path();
	{
		Device closing = std::move(a->dev);
	}
	EXPECT_EQ(irq::live_eventfds(), *base) << "close_device kept eventfd references";

	Device again = open_device(path);
	EXPECT_EQ(irq::set(again, irq::kNone | irq::kTrigger, VFIO_PCI_ERR_IRQ_INDEX, 0, 1), EINVAL)
		<< "an ERR trigger survived the close of the device fd";
	EXPECT_EQ(irq::set(again, irq::kNone | irq::kTrigger, VFIO_PCI_REQ_IRQ_INDEX, 0, 1), EINVAL)
		<< "a REQ trigger survived the close of the device fd";
}

TEST_F(IrqRelease, UnregisteringDropsTheEventfd)
{
	auto base = irq::live_eventfds();
	ASSERT_TRUE(base) << "the module has no stats/live_eventfds counter";
	auto a = Fresh::make(Profile::StopCopy);
	Fd efd = irq::make_eventfd();
	ASSERT_EQ(irq::set_eventfd(a->dev, VFIO_PCI_REQ_IRQ_INDEX, efd.get()), 0);
	EXPECT_EQ(irq::live_eventfds(), *base + 1);
	ASSERT_EQ(irq::set_eventfd(a->dev, VFIO_PCI_REQ_IRQ_INDEX, -1), 0);
	EXPECT_EQ(irq::live_eventfds(), *base) << "fd -1 kept the eventfd";
	ASSERT_EQ(irq::set_eventfd(a->dev, VFIO_PCI_REQ_IRQ_INDEX, efd.get()), 0);
	ASSERT_EQ(irq::set(a->dev, irq::kNone | irq::kTrigger, VFIO_PCI_REQ_IRQ_INDEX, 0, 0), 0);
	EXPECT_EQ(irq::live_eventfds(), *base) << "count-0 teardown kept the eventfd";
}

} // namespace
} // namespace vfiomig::test
