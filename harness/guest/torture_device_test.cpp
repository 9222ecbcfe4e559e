// Random concurrent SET/GET_STATE, precopy info, data size, data fd I/O and closes, resets and region access on one device leave it consistent, with clean fds and no leaks.
#include "fresh.hpp"

#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace vfiomig::test {
namespace {

using namespace std::chrono_literals;

/// VFIOMIG_SEED if set, otherwise a fresh one; printed either way.
std::uint64_t torture_seed()
{
	if (const char *s = std::getenv("VFIOMIG_SEED"); s && *s)
		return std::strtoull(s, nullptr, 0);
	std::random_device rd;
	return (static_cast<std::uint64_t>(rd()) << 32) | rd();
}

std::chrono::milliseconds torture_time()
{
	if (const char *s = std::getenv("VFIOMIG_TORTURE_MS"); s && *s)
		return std::chrono::milliseconds(std::strtoul(s, nullptr, 0));
	return 6000ms;
}

/// A data fd shared between the threads; closed when the last user drops it.
struct Session {
	DataFd fd;
	bool saving = true;
};

class Torture : public ::testing::Test {
protected:
	void SetUp() override
	{
		REQUIRE_CONTROL();
		if (!module_loaded())
			GTEST_SKIP() << "vfio_mig_emu is not loaded";
		SKIP_UNLESS_OFFERED(Profile::Full);
	}
};

TEST_F(Torture, RandomConcurrentOperationsOnOneDevice)
{
	const std::uint64_t seed = torture_seed();
	std::cout << "[ seed     ] VFIOMIG_SEED=" << seed << "\n";
	RecordProperty("seed", std::to_string(seed));
	const control::Stats base = nl()->stats();

	std::vector<std::shared_ptr<Session>> retired; // ended sessions, checked afterwards
	{
		auto f = Fresh::make(Profile::Full);
		Device &dev = f->dev;
		const std::uint64_t flags = dev.migration_flags();
		std::vector<State> valid;
		for (State s : kAllStates)
			if (is_valid_state(s, flags))
				valid.push_back(s);
		(void)dev.try_region_info(VFIO_PCI_BAR0_REGION_INDEX);
		(void)dev.try_region_info(VFIO_PCI_BAR2_REGION_INDEX);
		const std::uint64_t mem = emu::mem_size(dev);

		std::mutex lock; // protects current, retired
		std::shared_ptr<Session> current;
		auto take = [&] {
			std::lock_guard lk(lock);
			return current;
		};
		auto install = [&](std::shared_ptr<Session> s) {
			std::lock_guard lk(lock);
			if (current && retired.size() < 24)
				retired.push_back(current);
			current = std::move(s);
		};

		std::atomic<bool> stop{false};
		std::mutex bad_lock;
		std::vector<std::string> bad; // unexpected results
		auto unexpected = [&](const std::string &what) {
			std::lock_guard lk(bad_lock);
			if (bad.size() < 20)
				bad.push_back(what);
		};
		auto allow = [&](const auto &r, std::initializer_list<int> ok_errnos, const char *op) {
			if (r.ok())
				return;
			for (int e : ok_errnos)
				if (r.err() == e)
					return;
			unexpected(std::string(op) + ": " + r.describe());
		};
		std::atomic<std::uint64_t> ops{0};

		auto worker = [&](unsigned id) {
			std::mt19937_64 rng(seed + id * 0x9e3779b97f4a7c15ull);
			std::vector<std::uint8_t> buf(64 * 1024);
			while (!stop) {
				ops++;
				switch (rng() % 10) {
				case 0:
				case 1: {
					State to = valid[rng() % valid.size()];
					auto r = dev.try_set_state(to);
					allow(r, {EINVAL}, "SET_STATE");
					if (r.ok() && r->has_data())
						install(std::make_shared<Session>(
							Session{std::move(r->data), to != State::Resuming}));
					break;
				}
				case 2: {
					auto g = dev.try_get_state();
					allow(g, {}, "GET_STATE");
					break;
				}
				case 3:
					if (auto s = take())
						allow(s->fd.precopy_info(), {EINVAL, ENODEV, ENOTTY}, "PRECOPY_INFO");
					break;
				case 4:
					// "Can be called on each device state" (uAPI).
					allow(dev.try_stop_copy_size(), {}, "MIG_DATA_SIZE");
					break;
				case 5:
				case 6:
					if (auto s = take()) {
						std::size_t len = 1 + rng() % buf.size();
						if (s->saving)
							allow(s->fd.read({buf.data(), len}), {ENOMSG, ENODEV}, "read");
						else
							allow(s->fd.write({buf.data(), len}), {EINVAL, ENODEV}, "write");
					}
					break;
				case 7:
					if (rng() % 2 == 0) // close: the fd goes when the last user drops it
						install(nullptr);
					else if (rng() % 4 == 0)
						allow(dev.try_reset(), {}, "RESET");
					break;
				case 8: {
					std::uint32_t reg = VFIO_MIG_EMU_REG_SCRATCH + 4 * static_cast<std::uint32_t>(rng() % 64);
					allow(dev.try_write32(VFIO_PCI_BAR0_REGION_INDEX, reg, static_cast<std::uint32_t>(rng())),
					      {EBUSY}, "BAR0 write");
					allow(dev.try_read32(VFIO_PCI_BAR0_REGION_INDEX, VFIO_MIG_EMU_REG_STATE), {},
					      "BAR0 read");
					break;
				}
				default: {
					std::uint64_t off = (rng() % (mem / 4096)) * 4096;
					if (rng() % 2)
						allow(dev.try_region_write(VFIO_PCI_BAR2_REGION_INDEX, off, {buf.data(), 4096}),
						      {EBUSY}, "BAR2 write");
					else
						allow(dev.try_region_read(VFIO_PCI_BAR2_REGION_INDEX, off, {buf.data(), 4096}), {},
						      "BAR2 read");
				}
				}
			}
		};
		std::vector<std::jthread> threads;
		for (unsigned i = 0; i < 5; i++)
			threads.emplace_back(worker, i);
		std::this_thread::sleep_for(torture_time());
		stop = true;
		threads.clear();
		std::cout << "[ torture  ] " << ops.load() << " operations, " << retired.size() << " sessions kept\n";
		for (const std::string &b : bad)
			ADD_FAILURE() << "unexpected result: " << b;
		EXPECT_GT(ops.load(), 100u);

		// A state some serial order reaches: a valid one, or ERROR.
		auto now = dev.try_get_state();
		ASSERT_OK(now);
		EXPECT_TRUE(*now == State::Error || is_valid_state(*now, flags)) << state_name(*now);
		if (current)
			retired.push_back(current);
		current.reset();

		// Reset ends every session; then the device works end to end.
		ASSERT_OK(dev.try_reset());
		EXPECT_EQ(state_name(dev.get_state()), "RUNNING");
		auto sc = dev.set_state(State::StopCopy);
		ASSERT_TRUE(sc.has_data());
		Bytes stream;
		PumpOptions po;
		po.capture = &stream;
		ASSERT_OK(pump(sc.data, nullptr, po));
		EXPECT_TRUE(parse_stream(stream).ok()) << parse_stream(stream).describe();
		EXPECT_EQ(state_name(dev.get_state()), "STOP_COPY");

		// Every fd of a terminated session fails cleanly and polls HUP at once.
		std::uint8_t b[64];
		for (auto &s : retired) {
			auto r = s->saving ? s->fd.read(b) : s->fd.write(b);
			ASSERT_FALSE(r.ok()) << "I/O on an ended session succeeded";
			EXPECT_TRUE(r.err() == ENODEV || r.err() == EINVAL) << r.describe();
			struct pollfd p {s->fd.fd().get(), POLLIN | POLLOUT, 0};
			ASSERT_EQ(::poll(&p, 1, 2000), 1) << "poll on an ended session did not return";
			EXPECT_TRUE(p.revents & (POLLHUP | POLLERR)) << "revents " << p.revents;
		}
	}
	retired.clear();
	// Device closed and removed, every fd closed: the module's live objects
	// are back where they were.
	control::Stats after = nl()->stats();
	EXPECT_EQ(after.devices, base.devices);
	EXPECT_EQ(after.files, base.files);
	EXPECT_EQ(after.buffers, base.buffers);
	EXPECT_EQ(after.pages, base.pages);
}

} // namespace
} // namespace vfiomig::test
