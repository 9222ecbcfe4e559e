// Closing the device fd ends its sessions; a data fd outliving its device fails cleanly with ENODEV.
#include "common.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <optional>

namespace vfiomig::test {
namespace {

class Lifetime : public ProfileTest {
protected:
	/// The sysfs path of a device this test alone opens and closes: a new
	/// vfio_mig_emu instance, or the foreign source with its pooled fd
	/// closed (the pool opens it again for the next test).
	std::string own_device()
	{
		if (emulated()) {
			mdev_.emplace(MdevInstance::create(profile()));
			return mdev_->sysfs_path();
		}
		release_instance(target(), 0);
		return target_config().devices.at(0);
	}

	/// A data fd whose session ended with its device fd: ENODEV on ours
	/// (module choice, as mlx5 and mtty); on another driver it must at
	/// least not hand out stream data.
	template <typename R>
	void expect_ended(R r, const char *what)
	{
		if (emulated()) {
			EXPECT_ERRNO(r, ENODEV) << what;
		} else {
			const std::size_t moved = r.ok() ? r.value() : 0;
			EXPECT_EQ(moved, 0u) << what << " after the device fd closed moved stream bytes";
		}
	}

private:
	std::optional<MdevInstance> mdev_;
};

TEST_P(Lifetime, DataFdOutlivesTheDeviceFd)
{
	const std::string path = own_device();
	DataFd saving;
	{
		Device dev = open_device(path);
		if (emulated()) {
			ASSERT_OK(emu::scribble(dev, 91, 2));
		}
		auto s = dev.set_state(State::StopCopy);
		ASSERT_TRUE(s.has_data());
		saving = std::move(s.data);
		std::uint8_t first[16];
		ASSERT_OK(saving.read(first));
	} // device fd closed here, session still referenced by `saving`
	std::uint8_t buf[4096];
	expect_ended(saving.read(buf), "read() of the saving fd");
	saving.close();

	// Reopening gives a reset, RUNNING device: our module's choice, as the
	// variant drivers' open_device (mlx5, hisi_acc) do; vfio.h is silent.
	// mtty keeps the state it was closed in: noted, then VFIO_DEVICE_RESET
	// must bring it to RUNNING.
	Device dev = open_device(path);
	State reopened = dev.get_state();
	if (emulated()) {
		EXPECT_EQ(state_name(reopened), "RUNNING");
	} else if (reopened != State::Running) {
		RecordProperty("reopened_state", state_name(reopened));
		std::printf("note: %s opens in %s after a close in STOP_COPY (ours and the variant drivers: RUNNING)\n",
			    foreign_label().c_str(), state_name(reopened).c_str());
		dev.reset();
		EXPECT_EQ(state_name(dev.get_state()), "RUNNING") << "VFIO_DEVICE_RESET after the reopen";
	}
	auto fresh = dev.set_state(State::StopCopy);
	EXPECT_TRUE(fresh.has_data());
}

TEST_P(Lifetime, ResumingFdOutlivesTheDeviceFd)
{
	const std::string path = own_device();
	DataFd resuming;
	Bytes stream;
	// Our stream's header, or half of a foreign driver's opaque stream.
	std::size_t head = 0;
	{
		Device dev = open_device(path);
		stream = save(dev);
		ASSERT_GE(stream.size(), 2u);
		head = emulated() ? kStreamHeaderSize : stream.size() / 2;
		auto r = dev.set_state(State::Resuming);
		ASSERT_TRUE(r.has_data());
		resuming = std::move(r.data);
		ASSERT_OK(resuming.write(ByteSpan(stream).first(head)));
	}
	expect_ended(resuming.write(ByteSpan(stream).subspan(head)), "write() of the resuming fd");
}

TEST_P(Lifetime, DeviceCloseWakesAThreadBlockedInPoll)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	auto dev = std::make_unique<Device>(open_device(own_device()));
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
	// EPOLLHUP|EPOLLERR and ENODEV: our module's choice (as mlx5).
	if (emulated()) {
		EXPECT_TRUE(ev & (POLLHUP | POLLERR)) << "revents " << ev;
	}
	expect_ended(s.data.read(buf), "read() of the PRE_COPY fd");
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
