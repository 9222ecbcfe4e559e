// VFIO_DEVICE_SET_IRQS on ERR and REQ: an eventfd trigger registers, DATA_NONE/DATA_BOOL signal it, fd -1 or count 0 unregister, bad arguments are refused.
#include "irq.hpp"

namespace vfiomig::test {
namespace {

struct Index {
	std::uint32_t index;
	const char *name;
};
constexpr Index kIndexes[] = {{VFIO_PCI_ERR_IRQ_INDEX, "ERR"}, {VFIO_PCI_REQ_IRQ_INDEX, "REQ"}};

class SetIrqs : public ProfileTest {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("ERR/REQ triggers");
		ProfileTest::SetUp();
	}
	void TearDown() override
	{
		// The pooled device keeps its fd: leave no trigger behind.
		if (has_src())
			for (const Index &i : kIndexes)
				(void)irq::set_eventfd(src(), i.index, -1);
		ProfileTest::TearDown();
	}
};

TEST_P(SetIrqs, EventfdTriggerIsSignalledByLoopbackUntilUnregistered)
{
	for (const Index &i : kIndexes) {
		SCOPED_TRACE(i.name);
		Fd efd = irq::make_eventfd();
		ASSERT_EQ(irq::set_eventfd(src(), i.index, efd.get()), 0) << "registering an eventfd";
		EXPECT_EQ(irq::take(efd), 0u) << "signalled by registering alone";
		EXPECT_EQ(irq::set(src(), irq::kNone | irq::kTrigger, i.index, 0, 1), 0) << "DATA_NONE loopback";
		EXPECT_EQ(irq::take(efd), 1u) << "DATA_NONE count 1 must signal the trigger";
		EXPECT_EQ(irq::set(src(), irq::kBool | irq::kTrigger, i.index, 0, 1, {1}), 0) << "DATA_BOOL true";
		EXPECT_EQ(irq::take(efd), 1u) << "DATA_BOOL true must signal the trigger";
		EXPECT_EQ(irq::set(src(), irq::kBool | irq::kTrigger, i.index, 0, 1, {0}), 0) << "DATA_BOOL false";
		EXPECT_EQ(irq::take(efd), 0u) << "DATA_BOOL false must not signal";

		ASSERT_EQ(irq::set_eventfd(src(), i.index, -1), 0) << "fd -1 unregisters";
		EXPECT_EQ(irq::set(src(), irq::kNone | irq::kTrigger, i.index, 0, 1), EINVAL)
			<< "DATA_NONE with no trigger registered (vfio-pci: EINVAL)";
		EXPECT_EQ(irq::take(efd), 0u) << "signalled after being unregistered";
	}
}

TEST_P(SetIrqs, ReplacingTheEventfdSignalsOnlyTheNewOne)
{
	Fd a = irq::make_eventfd(), b = irq::make_eventfd();
	ASSERT_EQ(irq::set_eventfd(src(), VFIO_PCI_ERR_IRQ_INDEX, a.get()), 0);
	ASSERT_EQ(irq::set_eventfd(src(), VFIO_PCI_ERR_IRQ_INDEX, b.get()), 0);
	EXPECT_EQ(irq::set(src(), irq::kNone | irq::kTrigger, VFIO_PCI_ERR_IRQ_INDEX, 0, 1), 0);
	EXPECT_EQ(irq::take(a), 0u) << "the replaced eventfd was signalled";
	EXPECT_EQ(irq::take(b), 1u) << "the new eventfd was not signalled";
	// The two indexes are independent.
	EXPECT_EQ(irq::set(src(), irq::kNone | irq::kTrigger, VFIO_PCI_REQ_IRQ_INDEX, 0, 1), EINVAL)
		<< "REQ has no trigger: ERR's registration leaked into it";
}

TEST_P(SetIrqs, CountZeroTearsTheTriggerDown)
{
	Fd efd = irq::make_eventfd();
	ASSERT_EQ(irq::set_eventfd(src(), VFIO_PCI_REQ_IRQ_INDEX, efd.get()), 0);
	EXPECT_EQ(irq::set(src(), irq::kNone | irq::kTrigger, VFIO_PCI_REQ_IRQ_INDEX, 0, 0), 0)
		<< "DATA_NONE count 0 tears the trigger down";
	EXPECT_EQ(irq::set(src(), irq::kNone | irq::kTrigger, VFIO_PCI_REQ_IRQ_INDEX, 0, 1), EINVAL)
		<< "the trigger survived the count-0 teardown";
	EXPECT_EQ(irq::take(efd), 0u);
}

TEST_P(SetIrqs, BadArgumentsAreRefused)
{
	Fd efd = irq::make_eventfd();
	const std::uint32_t err = VFIO_PCI_ERR_IRQ_INDEX;
	const std::uint32_t eventfd_trigger = irq::kEventfd | irq::kTrigger;
	auto fd = irq::fd_data(efd.get());
	auto two = fd;
	two.insert(two.end(), fd.begin(), fd.end());
	EXPECT_EQ(irq::set(src(), eventfd_trigger, err, 1, 1, fd), EINVAL) << "start 1 of a 1-vector index";
	EXPECT_EQ(irq::set(src(), eventfd_trigger, err, 0, 2, two), EINVAL) << "count 2 of a 1-vector index";
	EXPECT_EQ(irq::set(src(), eventfd_trigger | (1u << 9), err, 0, 1, fd), EINVAL) << "undefined flag bit";
	EXPECT_EQ(irq::set(src(), irq::kEventfd | irq::kBool | irq::kTrigger, err, 0, 1, fd), EINVAL)
		<< "two data types";
	EXPECT_EQ(irq::set(src(), eventfd_trigger, err, 0, 1, fd, sizeof(struct vfio_irq_set) + 2), EINVAL)
		<< "argsz too small for the data";
	EXPECT_EQ(irq::set(src(), eventfd_trigger, err, 0, 1, {}, 8), EINVAL) << "argsz below the header";
	EXPECT_EQ(irq::set(src(), eventfd_trigger, VFIO_PCI_NUM_IRQS, 0, 1, fd), EINVAL) << "index past the last";
	EXPECT_EQ(irq::set(src(), eventfd_trigger, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, fd), EINVAL)
		<< "INTx has no vector";
	EXPECT_EQ(irq::set(src(), eventfd_trigger, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, fd), EINVAL) << "MSI has no vector";
	EXPECT_EQ(irq::set(src(), eventfd_trigger, err, 0, 0, {}), EINVAL) << "DATA_EVENTFD with count 0";
	EXPECT_EQ(irq::set(src(), irq::kBool | irq::kTrigger, err, 0, 0, {}), EINVAL) << "DATA_BOOL with count 0";
	EXPECT_EQ(irq::set_eventfd(src(), err, -2), EINVAL) << "fd -2";
	EXPECT_EQ(irq::set_eventfd(src(), err, src().fd().get()), EINVAL) << "an fd that is not an eventfd";
	int closed = ::dup(efd.get());
	ASSERT_GE(closed, 0);
	::close(closed);
	EXPECT_EQ(irq::set_eventfd(src(), err, closed), EBADF) << "a closed fd number";
	// ERR and REQ cannot be masked: vfio-pci has no MASK/UNMASK action for them.
	EXPECT_EQ(irq::set(src(), irq::kNone | VFIO_IRQ_SET_ACTION_MASK, err, 0, 1), ENOTTY);
	EXPECT_EQ(irq::set(src(), irq::kNone | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_REQ_IRQ_INDEX, 0, 1), ENOTTY);
	// None of the refused calls registered anything.
	EXPECT_EQ(irq::set(src(), irq::kNone | irq::kTrigger, err, 0, 1), EINVAL)
		<< "a refused SET_IRQS left a trigger registered";
	EXPECT_EQ(irq::take(efd), 0u);
}

VFIOMIG_INSTANTIATE_PROFILES(SetIrqs);

} // namespace
} // namespace vfiomig::test
