// Removing an instance whose device fd is open signals the REQ eventfd, asking the user to release the device (vfio_device_ops.request, as vfio-pci).
#include <future>
#include <thread>

#include "fresh.hpp"
#include "irq.hpp"

namespace vfiomig::test {
namespace {

class DeviceRequest : public ::testing::Test {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("a fresh instance to remove");
		if (!module_loaded())
			GTEST_SKIP() << "vfio_mig_emu is not loaded";
		SKIP_UNLESS_OFFERED(Profile::StopCopy);
	}
};

TEST_F(DeviceRequest, RemovingAnOpenInstanceSignalsReq)
{
	auto a = Fresh::make(Profile::StopCopy);
	Fd req = irq::make_eventfd();
	ASSERT_EQ(irq::set_eventfd(a->dev, VFIO_PCI_REQ_IRQ_INDEX, req.get()), 0);

	// The remove blocks in the vfio core until the device fd is closed.
	auto removed = std::async(std::launch::async, [&] { return a->mdev->remove(); });
	std::uint64_t n = irq::take(req, 5000);
	EXPECT_GE(n, 1u) << "removing the instance did not signal REQ within 5 s";
	EXPECT_EQ(removed.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout)
		<< "the remove finished while the device fd was open";
	{
		Device closing = std::move(a->dev); // the user answers the request
	}
	ASSERT_EQ(removed.wait_for(std::chrono::seconds(30)), std::future_status::ready)
		<< "the remove did not finish after the device fd was closed";
	EXPECT_OK(removed.get());
}

} // namespace
} // namespace vfiomig::test
