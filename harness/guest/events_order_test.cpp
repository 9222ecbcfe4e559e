// Events arrive in order with consecutive sequence numbers and say what happened; a subscription can be stopped.
#include "control_expect.hpp"

#include <atomic>
#include <chrono>
#include <thread>

namespace vfiomig::test {
namespace {

using namespace control;
using namespace std::chrono_literals;

/// A test on the stopcopy profile: RUNNING -> STOP_COPY is RUNNING -> STOP -> STOP_COPY.
class Events : public ProfileFixture {
protected:
	Target target() const override { return Target{Profile::StopCopy}; }
	void SetUp() override
	{
		ProfileFixture::SetUp();
		if (IsSkipped() || HasFatalFailure())
			return;
		REQUIRE_CONTROL();
		sub_ = std::make_unique<EventSubscription>();
	}
	/// This device's events until 300 ms pass without one.
	std::vector<Event> mine()
	{
		std::vector<Event> out;
		for (Event &e : sub_->drain(300ms))
			if (e.uuid == src().label())
				out.push_back(std::move(e));
		return out;
	}
	std::unique_ptr<EventSubscription> sub_;
};

std::string kinds(const std::vector<Event> &evs)
{
	std::string s;
	for (const Event &e : evs)
		s += (s.empty() ? "" : ", ") + describe(e);
	return s;
}

void expect_consecutive(const std::vector<Event> &evs)
{
	for (std::size_t i = 1; i < evs.size(); i++) {
		EXPECT_EQ(evs[i].seq, evs[i - 1].seq + 1) << "gap or reorder at event " << i << ": " << kinds(evs);
		EXPECT_GE(evs[i].timestamp_ns, evs[i - 1].timestamp_ns) << "timestamps go backwards";
	}
}

TEST_F(Events, StopCopyFromRunningReportsBothArcsAndTheSession)
{
	Device &dev = src();
	auto s = dev.set_state(State::StopCopy);
	ASSERT_TRUE(s.has_data());
	auto evs = mine();
	ASSERT_EQ(evs.size(), 3u) << kinds(evs);
	EXPECT_EQ(evs[0].kind, EventKind::State);
	EXPECT_EQ(evs[0].from, static_cast<std::uint32_t>(State::Running));
	EXPECT_EQ(evs[0].to, static_cast<std::uint32_t>(State::Stop));
	EXPECT_EQ(evs[0].err, 0u);
	EXPECT_EQ(evs[0].state, static_cast<std::uint32_t>(State::Stop));
	// The session opens inside the STOP -> STOP_COPY arc, before its STATE event.
	bool session_first = evs[1].kind == EventKind::Session;
	const Event &st = session_first ? evs[2] : evs[1];
	const Event &se = session_first ? evs[1] : evs[2];
	EXPECT_EQ(st.kind, EventKind::State) << kinds(evs);
	EXPECT_EQ(st.from, static_cast<std::uint32_t>(State::Stop));
	EXPECT_EQ(st.to, static_cast<std::uint32_t>(State::StopCopy));
	EXPECT_EQ(st.state, static_cast<std::uint32_t>(State::StopCopy));
	EXPECT_EQ(se.kind, EventKind::Session) << kinds(evs);
	EXPECT_EQ(se.session, SessionKind::Saving);
	EXPECT_TRUE(se.session_open);
	expect_consecutive(evs);

	dev.set_state(State::Stop);
	evs = mine();
	ASSERT_EQ(evs.size(), 2u) << kinds(evs);
	bool has_end = false;
	for (const Event &e : evs)
		has_end |= e.kind == EventKind::Session && !e.session_open;
	EXPECT_TRUE(has_end) << "leaving STOP_COPY ends the session: " << kinds(evs);
}

TEST_F(Events, ArriveInOrderWithoutGapsAndMatchWhatHappened)
{
	Device &dev = src();
	FaultGuard g(dev.label());
	(void)mine();
	nl()->workload(dev.label(), Workload::Reconfig, 2);                           // CRITICAL
	Fault f = fault(Site::SetState, Effect::Fail);
	f.trigger = Trigger::Nth;
	f.n = 1;
	f.err = EXDEV;
	std::uint32_t id = nl()->add_fault(dev.label(), f);
	EXPECT_ERRNO(dev.try_set_state(State::Stop), EXDEV);                           // FAULT, STATE failed
	dev.set_state(State::Stop);                                                   // STATE
	ASSERT_OK(dev.try_reset());                                                   // RESET
	auto evs = mine();
	ASSERT_EQ(evs.size(), 5u) << kinds(evs);
	EXPECT_EQ(evs[0].kind, EventKind::Critical);
	EXPECT_EQ(evs[0].nr_resources, 2u);
	EXPECT_GE(evs[0].bytes, 2 * (sizeof(vfio_mig_emu_record) + sizeof(vfio_mig_emu_resource)));
	EXPECT_EQ(evs[1].kind, EventKind::Fault);
	EXPECT_EQ(evs[1].fault_id, id);
	ASSERT_TRUE(evs[1].fault);
	EXPECT_EQ(evs[1].fault->hits, 1u);
	EXPECT_EQ(evs[1].from, static_cast<std::uint32_t>(State::Running));
	EXPECT_EQ(evs[1].to, static_cast<std::uint32_t>(State::Stop));
	EXPECT_EQ(evs[2].kind, EventKind::State);
	EXPECT_EQ(evs[2].err, static_cast<std::uint32_t>(EXDEV));
	EXPECT_EQ(evs[2].state, static_cast<std::uint32_t>(State::Running)) << "a FAIL stays in the from state";
	EXPECT_EQ(evs[3].kind, EventKind::State);
	EXPECT_EQ(evs[3].err, 0u);
	EXPECT_EQ(evs[4].kind, EventKind::Reset);
	EXPECT_EQ(evs[4].from, static_cast<std::uint32_t>(State::Stop));
	expect_consecutive(evs);
	EXPECT_EQ(sub_->overruns(), 0u);
}

TEST_F(Events, ManyTransitionsLoseNoEvent)
{
	Device &dev = src();
	(void)mine();
	for (int i = 0; i < 100; i++) {
		dev.set_state(State::Stop);
		dev.set_state(State::Running);
	}
	auto evs = mine();
	EXPECT_EQ(evs.size(), 200u);
	expect_consecutive(evs);
}

TEST_F(Events, StopWakesABlockedReader)
{
	std::atomic<bool> returned{false};
	std::optional<Event> got;
	(void)sub_->drain(50ms);
	std::thread reader([&] {
		got = sub_->pop(); // blocks: nothing happens on the device
		returned = true;
	});
	std::this_thread::sleep_for(100ms);
	EXPECT_FALSE(returned) << "pop() returned without an event or stop()";
	auto t0 = std::chrono::steady_clock::now();
	sub_->stop();
	reader.join();
	// A stop() that does not wake the reader leaves it blocked for good:
	// the bound only has to be finite, not tight.
	EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
	EXPECT_FALSE(got);
	EXPECT_FALSE(sub_->pop(0ms)) << "a stopped subscription stays stopped";
}

TEST_F(Events, CallbackReceivesEventsOnItsThread)
{
	Device &dev = src();
	(void)mine();
	EventSubscription cb_sub;
	std::atomic<int> seen{0};
	std::string uuid = dev.label();
	cb_sub.start([&](const Event &e) {
		if (e.uuid == uuid && e.kind == EventKind::Reset)
			seen++;
	});
	ASSERT_OK(dev.try_reset());
	ASSERT_OK(dev.try_reset());
	for (int i = 0; i < 100 && seen < 2; i++)
		std::this_thread::sleep_for(10ms);
	cb_sub.stop();
	EXPECT_EQ(seen, 2);
}

} // namespace
} // namespace vfiomig::test
