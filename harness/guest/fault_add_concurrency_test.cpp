// FAULT_ADD answers with the fault it added, whole, while other sockets clear faults and calls at the site fire them.
//
// Not a failing-first test: before the family had parallel_ops, genl_mutex
// serialised FAULT_ADD and FAULT_CLEAR, so the unlocked copy of the new
// fault raced only the (benign) counting in vme_fault_check(). With
// parallel commands the copy would read a fault FAULT_CLEAR has freed;
// this stress makes that window likely, and a KASAN kernel (make
// check-debug) reports the use-after-free if the copy is outside the lock.
#include "control_expect.hpp"

#include <atomic>
#include <chrono>
#include <thread>

namespace vfiomig::test {
namespace {

using namespace control;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class FaultAddConcurrency : public FullProfileTest {};

TEST_F(FaultAddConcurrency, TheReplyIsTheFaultAddedWhileOthersClearAndFire)
{
	Device &s = src();
	const std::string uuid = s.label();
	FaultGuard g(uuid);
	std::atomic<bool> stop{false};
	std::atomic<unsigned> added{0}, bad{0};
	std::string first_bad;

	std::thread adder([&] {
		Client c = Client::open();
		while (!stop) {
			Fault f = fault(Site::DataSize, Effect::Fail);
			f.trigger = Trigger::Nth;
			f.n = 1000000; // counts every call, never fires
			f.err = EXDEV;
			AttrBuf b;
			b.str(VFIO_MIG_EMU_A_UUID, uuid);
			auto nest = b.begin_nest(VFIO_MIG_EMU_A_FAULT);
			b.u32(VFIO_MIG_EMU_FAULT_SITE, VFIO_MIG_EMU_SITE_DATA_SIZE)
				.u32(VFIO_MIG_EMU_FAULT_EFFECT, VFIO_MIG_EMU_EFFECT_FAIL)
				.u32(VFIO_MIG_EMU_FAULT_TRIGGER, VFIO_MIG_EMU_TRIGGER_NTH)
				.u32(VFIO_MIG_EMU_FAULT_N, 1000000)
				.u32(VFIO_MIG_EMU_FAULT_ERRNO, EXDEV);
			b.end_nest(nest);
			RawReply r = c.raw_request(VFIO_MIG_EMU_CMD_FAULT_ADD, b.data());
			if (r.err == ENOSPC)
				continue;
			if (r.err || r.messages.size() != 1) {
				if (!bad++)
					first_bad = "FAULT_ADD: " + errno_name(r.err) + " " + r.extack;
				continue;
			}
			added++;
		}
	});
	std::thread clearer([&] {
		Client c = Client::open();
		while (!stop)
			c.clear_faults(uuid);
	});
	std::thread caller([&] {
		while (!stop)
			(void)s.try_stop_copy_size();
	});
	auto end = Clock::now() + 2s;
	while (Clock::now() < end && !bad)
		std::this_thread::sleep_for(50ms);
	stop = true;
	adder.join();
	clearer.join();
	caller.join();
	EXPECT_EQ(bad.load(), 0u) << first_bad;
	EXPECT_GT(added.load(), 0u);
	// Whatever is left is whole and as added.
	for (const Fault &f : nl()->faults(uuid)) {
		EXPECT_EQ(f.site, Site::DataSize);
		EXPECT_EQ(f.n.value_or(0), 1000000u);
		EXPECT_EQ(f.err.value_or(0), static_cast<std::uint32_t>(EXDEV));
	}
}

} // namespace
} // namespace vfiomig::test
