// Closing the device fd ends its sessions; a data fd outliving its device fails cleanly with ENODEV.
#include "common.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>

namespace vfiomig::test {
namespace {

class Lifetime : public ProfileTest {
protected:
	// Each test opens and closes its own instance; the pooled foreign
	// device stays open for the whole run.
	void SetUp() override
	{
		REQUIRE_EMU("instances created per test");
		ProfileTest::SetUp();
	}
};

TEST_P(Lifetime, DataFdOutlivesTheDeviceFd)
{
	// A private instance: the pooled ones stay open for the whole run.
	MdevInstance mdev = MdevInstance::create(profile());
	DataFd saving;
	{
		Device dev = open_device(mdev.sysfs_path());
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
	Device dev = open_device(mdev.sysfs_path());
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
		Device dev = open_device(mdev.sysfs_path());
		stream = save(dev);
		auto r = dev.set_state(State::Resuming);
		ASSERT_TRUE(r.has_data());
		resuming = std::move(r.data);
		ASSERT_OK(resuming.write(ByteSpan(stream).first(kStreamHeaderSize)));
	}
	EXPECT_ERRNO(resuming.write(ByteSpan(stream).subspan(kStreamHeaderSize)), ENODEV);
}

TEST_P(Lifetime, DeviceCloseWakesAThreadBlockedInPoll)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	MdevInstance mdev = MdevInstance::create(profile());
	auto dev = std::make_unique<Device>(open_device(mdev.sysfs_path()));
	auto s = dev->set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	std::vector<std::uint8_t> buf(64 * 1024);
	for (;;) { // drain to the temporary end: poll now waits
		auto r = s.data.read(buf);
		if (!r.ok()) {
			ASSERT_EQ(r.err(), ENOMSG) << r.describe();
			break;
		}
		// 0 would be the end of the stream, which PRE_COPY never has:
		// a driver answering 0 at the temporary end would loop us here.
		ASSERT_NE(*r, 0u) << "read() returned 0 in PRE_COPY; the uAPI says ENOMSG at the temporary end";
	}
	int fd = s.data.fd().get();
	auto waiter = std::async(std::launch::async, [fd] {
		struct pollfd p {fd, POLLIN, 0};
		int n = ::poll(&p, 1, 20000);
		return n == 1 ? p.revents : -1;
	});
	EXPECT_EQ(waiter.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
		<< "poll returned with nothing to read";
	dev.reset(); // closes the device fd: the session ends under the waiter
	ASSERT_EQ(waiter.wait_for(std::chrono::seconds(5)), std::future_status::ready)
		<< "the thread blocked in poll was not woken by the device close";
	short ev = static_cast<short>(waiter.get());
	EXPECT_TRUE(ev & (POLLHUP | POLLERR)) << "revents " << ev;
	EXPECT_ERRNO(s.data.read(buf), ENODEV);
}

VFIOMIG_INSTANTIATE_PROFILES(Lifetime);

/// delete_module(2) without waiting: EBUSY/EAGAIN while the module is in use.
int try_unload(const char *name)
{
	long r = ::syscall(SYS_delete_module, name, O_NONBLOCK);
	return r == 0 ? 0 : errno;
}

int module_refcnt()
{
	std::ifstream in("/sys/module/vfio_mig_emu/refcnt");
	int n = -1;
	in >> n;
	return n;
}

/// Removal is refused while a device fd or a data fd is open. Never let
/// it succeed here: the suite needs the module (guest-check unloads it
/// afterwards and fails if that is refused).
TEST(ModuleRemoval, RefusedWhileADeviceOrDataFdIsOpen)
{
	REQUIRE_EMU("module (delete_module while in use)");
	if (!module_loaded())
		GTEST_SKIP() << "vfio_mig_emu is not loaded";
	if (::geteuid() != 0)
		GTEST_SKIP() << "delete_module needs CAP_SYS_MODULE";
	// STOP_COPY only: every kernel's vfio core drives this profile.
	MdevInstance mdev = MdevInstance::create(Profile::StopCopy);
	DataFd data;
	{
		Device dev = open_device(mdev.sysfs_path());
		int ref = module_refcnt();
		ASSERT_GT(ref, 0) << "an open device fd holds no module reference: not trying delete_module";
		int err = try_unload("vfio_mig_emu");
		EXPECT_TRUE(err == EBUSY || err == EAGAIN || err == EWOULDBLOCK) << "delete_module: " << errno_name(err);
		auto s = dev.set_state(State::StopCopy);
		ASSERT_TRUE(s.has_data());
		data = std::move(s.data);
	}
	// Only the data fd is left of this device (the pool may hold others).
	ASSERT_GT(module_refcnt(), 0) << "an open data fd holds no module reference: not trying delete_module";
	int err = try_unload("vfio_mig_emu");
	EXPECT_TRUE(err == EBUSY || err == EAGAIN || err == EWOULDBLOCK) << "delete_module: " << errno_name(err);
	EXPECT_TRUE(module_loaded());
	data.close();
}

} // namespace
} // namespace vfiomig::test
