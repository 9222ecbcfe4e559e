// Closing the device fd ends its sessions; a data fd outliving its device fails cleanly with ENODEV.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class Lifetime : public ProfileTest {};

TEST_P(Lifetime, DataFdOutlivesTheDeviceFd)
{
	// A private instance: the pooled ones stay open for the whole run.
	MdevInstance mdev = MdevInstance::create(profile());
	DataFd saving;
	{
		Device dev = Device::open_sysfs(mdev.sysfs_path());
		ASSERT_OK(emu::scribble(dev, 91, 2));
		auto s = dev.set_state(State::StopCopy);
		ASSERT_TRUE(s.has_data());
		saving = std::move(s.data);
		std::uint8_t first[16];
		ASSERT_OK(saving.read(first));
	} // device fd closed here, session still referenced by `saving`
	std::uint8_t buf[4096];
	EXPECT_ERRNO(saving.read(buf), ENODEV);
	saving.close();

	// Reopening gives a reset, RUNNING device.
	Device dev = Device::open_sysfs(mdev.sysfs_path());
	EXPECT_EQ(state_name(dev.get_state()), "RUNNING");
	auto fresh = dev.set_state(State::StopCopy);
	EXPECT_TRUE(fresh.has_data());
}

TEST_P(Lifetime, ResumingFdOutlivesTheDeviceFd)
{
	MdevInstance mdev = MdevInstance::create(profile());
	DataFd resuming;
	Bytes stream;
	{
		Device dev = Device::open_sysfs(mdev.sysfs_path());
		stream = save(dev);
		auto r = dev.set_state(State::Resuming);
		ASSERT_TRUE(r.has_data());
		resuming = std::move(r.data);
		ASSERT_OK(resuming.write(ByteSpan(stream).first(kStreamHeaderSize)));
	}
	EXPECT_ERRNO(resuming.write(ByteSpan(stream).subspan(kStreamHeaderSize)), ENODEV);
}

VFIOMIG_INSTANTIATE_PROFILES(Lifetime);

} // namespace
} // namespace vfiomig::test
