// STOP_COPY ends with read() == 0, never ENOMSG; PRE_COPY's temporary end is ENOMSG and poll() waits for more.
#include "common.hpp"

#include <poll.h>
#include <thread>

namespace vfiomig::test {
namespace {

class DataFdEnd : public ProfileTest {};

TEST_P(DataFdEnd, StopCopyEndsWithEofNeverEnomsg)
{
	Device &dev = src();
	if (emulated()) {
		ASSERT_OK(emu::scribble(dev, 5));
	}
	auto s = dev.set_state(State::StopCopy);
	ASSERT_TRUE(s.has_data());
	auto p = pump(s.data, nullptr, {PumpUntil::Eof, {}, {}, nullptr});
	ASSERT_OK(p); // ENOMSG here would be an error
	EXPECT_TRUE(p->eof);
	EXPECT_GT(p->bytes_read, 0u);
	std::uint8_t buf[4096];
	for (int i = 0; i < 3; i++) {
		auto r = s.data.read(buf);
		ASSERT_OK(r);
		EXPECT_EQ(*r, 0u) << "data after end of stream";
	}
	// "poll always returning readable" (uAPI), not merely returning.
	struct pollfd pfd = {s.data.fd().get(), POLLIN, 0};
	EXPECT_EQ(::poll(&pfd, 1, 0), 1) << "poll at EOF must not block";
	EXPECT_TRUE(pfd.revents & POLLIN) << "poll at the end of STOP_COPY is not readable (revents " << pfd.revents
					  << ")";
}

TEST_P(DataFdEnd, PrecopyTemporaryEndIsEnomsgAndPollWakesOnNewData)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &dev = src();
	auto s = dev.set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	auto p = pump(s.data, nullptr, {PumpUntil::NoMsg, {}, {}, nullptr});
	ASSERT_OK(p);
	EXPECT_TRUE(p->enomsg) << "PRE_COPY stream ended with read() == 0, not ENOMSG";
	EXPECT_GT(p->bytes_read, 0u) << "no initial data";

	struct pollfd pfd = {s.data.fd().get(), POLLIN, 0};
	EXPECT_EQ(::poll(&pfd, 1, 100), 0) << "poll reported data at the temporary end (revents " << pfd.revents << ")";
	// New data needs a guest write the emulated device turns into dirty pages.
	REQUIRE_EMU("BAR2 writes (new precopy data)");

	std::thread writer([&dev] {
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
		(void)emu::write_pattern(dev, 0, VFIO_MIG_EMU_PAGE_SIZE, 77);
	});
	pfd.revents = 0;
	int n = ::poll(&pfd, 1, 5000);
	writer.join();
	ASSERT_EQ(n, 1) << "poll did not wake after a BAR2 write";
	EXPECT_TRUE(pfd.revents & POLLIN);
	std::uint8_t buf[8192];
	auto r = s.data.read(buf);
	ASSERT_OK(r);
	EXPECT_GT(*r, 0u);
}

TEST_P(DataFdEnd, PollerWakesWhenTheSessionEnds)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &dev = src();
	auto s = dev.set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	ASSERT_OK(pump(s.data, nullptr, {PumpUntil::NoMsg, {}, {}, nullptr}));
	// A consumer blocked in poll() at the temporary end must not hang
	// when the session is ended under it.
	std::thread ender([&dev] {
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
		(void)dev.try_set_state(State::Running);
	});
	struct pollfd pfd = {s.data.fd().get(), POLLIN, 0};
	int n = ::poll(&pfd, 1, 5000);
	ender.join();
	ASSERT_EQ(n, 1) << "poll did not wake when the session ended";
	std::uint8_t buf[64];
	EXPECT_ERRNO(s.data.read(buf), ENODEV);
}

VFIOMIG_INSTANTIATE_PROFILES(DataFdEnd);

} // namespace
} // namespace vfiomig::test
