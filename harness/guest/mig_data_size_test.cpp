// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE announces at least, and for this device exactly, what STOP_COPY produces.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class MigDataSize : public ProfileTest {};

TEST_P(MigDataSize, CoversTheBytesStopCopyProduces)
{
	REQUIRE_CAP(data_size, "MIG_DATA_SIZE");
	Device &dev = src();
	if (emulated()) {
		ASSERT_OK(emu::scribble(dev, 21, 10));
	}
	dev.set_state(State::Stop);
	auto size = dev.try_stop_copy_size();
	ASSERT_OK(size);
	auto s = dev.set_state(State::StopCopy);
	ASSERT_TRUE(s.has_data());
	auto p = pump(s.data, nullptr, {PumpUntil::Eof, {}, {}, nullptr});
	ASSERT_OK(p);
	EXPECT_GE(*size, p->bytes_read) << "announced less than produced";
	if (emulated()) {
		EXPECT_EQ(*size, p->bytes_read) << "the emulated device knows its exact stream size";
	}
}

TEST_P(MigDataSize, ProbeAnswersGetOnly)
{
	REQUIRE_CAP(data_size, "MIG_DATA_SIZE");
	Device &dev = src();
	EXPECT_EQ(errno_name(dev.probe_feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_GET)),
		  errno_name(0));
	EXPECT_EQ(errno_name(dev.probe_feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_SET)),
		  "EINVAL");
}

VFIOMIG_INSTANTIATE_PROFILES(MigDataSize);

} // namespace
} // namespace vfiomig::test
