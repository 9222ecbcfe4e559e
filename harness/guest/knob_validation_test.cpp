// Knobs take effect, round-trip through KNOBS_SET, and bad values are refused with the errno and a reason.
#include "control_expect.hpp"

#include <chrono>

namespace vfiomig::test {
namespace {

using namespace control;
using Clock = std::chrono::steady_clock;

/// Every knob back to its default (memory size aside).
Knobs defaults()
{
	Knobs k;
	k.arc_delays.push_back({kAnyState, kAnyState, 0});
	k.load_ns_per_kib = 0;
	k.load_us_per_resource = 0;
	k.resource_bytes = 0;
	k.dirty_rate = 0;
	k.reinit_policy = ReinitPolicy::Fold;
	return k;
}

class Knob : public FullProfileTest {
protected:
	void TearDown() override
	{
		FullProfileTest::TearDown();
		if (has_src() && nl())
			nl()->set_knobs(src().label(), defaults());
	}
};

TEST_F(Knob, EveryKnobRoundTrips)
{
	const std::string &u = src().label();
	Knobs k;
	k.load_ns_per_kib = 1000;
	k.load_us_per_resource = 20;
	k.resource_bytes = 100;
	k.dirty_rate = 3;
	k.reinit_policy = ReinitPolicy::Discard;
	k.arc_delays.push_back({static_cast<std::uint32_t>(State::Stop), static_cast<std::uint32_t>(State::StopCopy), 7});
	Knobs got = nl()->set_knobs(u, k);
	EXPECT_EQ(got.load_ns_per_kib, 1000u);
	EXPECT_EQ(got.load_us_per_resource, 20u);
	EXPECT_EQ(got.resource_bytes, 100u);
	EXPECT_EQ(got.dirty_rate, 3u);
	EXPECT_EQ(got.reinit_policy, ReinitPolicy::Discard);
	EXPECT_EQ(got.mem_size, emu::mem_size(src()));
	ASSERT_EQ(got.arc_delays.size(), 1u) << "only arcs with a delay are listed";
	EXPECT_EQ(got.arc_delays[0].from, static_cast<std::uint32_t>(State::Stop));
	EXPECT_EQ(got.arc_delays[0].to, static_cast<std::uint32_t>(State::StopCopy));
	EXPECT_EQ(got.arc_delays[0].delay_us, 7u);
	Knobs shown = nl()->device(u).knobs;
	EXPECT_EQ(shown.dirty_rate, 3u) << "DEV_GET shows the knobs too";
	Knobs unchanged = nl()->set_knobs(u, Knobs{});
	EXPECT_EQ(unchanged.load_ns_per_kib, 1000u) << "an empty KNOBS_SET changes nothing";
	Knobs back = nl()->set_knobs(u, defaults());
	EXPECT_TRUE(back.arc_delays.empty());
	EXPECT_EQ(back.reinit_policy, ReinitPolicy::Fold);
}

TEST_F(Knob, ArcDelayMakesThatArcTakeAtLeastTheDelay)
{
	Device &dev = src();
	constexpr auto kDelay = std::chrono::milliseconds(1000);
	// Baseline: RUNNING -> RUNNING_P2P -> STOP with no delay, in this run.
	auto t0 = Clock::now();
	dev.set_state(State::Stop);
	const auto baseline = Clock::now() - t0;
	dev.set_state(State::Running);

	ArcDelay d{static_cast<std::uint32_t>(State::Stop), static_cast<std::uint32_t>(State::RunningP2P),
		   static_cast<std::uint32_t>(std::chrono::microseconds(kDelay).count())};
	Knobs k;
	k.arc_delays.push_back(d);
	nl()->set_knobs(dev.label(), k);
	t0 = Clock::now();
	dev.set_state(State::Stop); // RUNNING -> RUNNING_P2P -> STOP: no delay
	auto quick = Clock::now() - t0;
	t0 = Clock::now();
	dev.set_state(State::Running); // STOP -> RUNNING_P2P (delayed) -> RUNNING
	auto slow = Clock::now() - t0;
	EXPECT_GE(slow, kDelay) << "the delayed arc took " << ms_of(slow) << " ms";
	// Were the delay applied to another arc, quick would take baseline + 1 s.
	const auto bound = prompt_bound(baseline, baseline + kDelay);
	EXPECT_LT(quick, bound) << "the undelayed arcs took " << ms_of(quick) << " ms (baseline " << ms_of(baseline)
				<< " ms): the delay applied to other arcs";
}

TEST_F(Knob, MemSizeChangesOnlyWhileTheDeviceIsClosed)
{
	EXPECT_CONTROL_ERROR(
		{
			Knobs k;
			k.mem_size = 1 << 16;
			nl()->set_knobs(src().label(), k);
		},
		EBUSY, "not open");
	MdevInstance fresh = MdevInstance::create(Profile::Full);
	Knobs k;
	k.mem_size = 1 << 16;
	EXPECT_EQ(nl()->set_knobs(fresh.uuid(), k).mem_size, 1u << 16);
	EXPECT_EQ(nl()->device(fresh.uuid()).mem_size, 1u << 16);
	Device dev = open_device(fresh.sysfs_path());
	EXPECT_EQ(dev.region_info(emu::kBar2).size, 1u << 16) << "BAR2 follows MEM_SIZE";
}

struct BadKnob {
	const char *what;
	Knobs knobs;
	int err;
	const char *text; ///< in the extack message
	const char *attr; ///< in the attribute the extack points at
};

Knobs with(void (*set)(Knobs &))
{
	Knobs k;
	set(k);
	return k;
}

TEST_F(Knob, BadValuesAreRefusedWithAReasonAndChangeNothing)
{
	const std::string &u = src().label();
	const BadKnob bad[] = {
		{"mem size not a page multiple", with([](Knobs &k) { k.mem_size = 5000; }), EINVAL, "multiple", "A_KNOBS/KNOB_MEM_SIZE"},
		{"mem size zero", with([](Knobs &k) { k.mem_size = 0; }), ERANGE, "range", "A_KNOBS/KNOB_MEM_SIZE, valid 4096..4294967296"},
		{"mem size above the limit", with([](Knobs &k) { k.mem_size = VFIO_MIG_EMU_MAX_MEM_SIZE + 4096; }),
		 ERANGE, "range", "A_KNOBS/KNOB_MEM_SIZE"},
		{"dirty rate", with([](Knobs &k) { k.dirty_rate = VFIO_MIG_EMU_MAX_DIRTY_RATE + 1; }), ERANGE, "range", "A_KNOBS/KNOB_DIRTY_RATE, valid 0..262144"},
		{"load ns per KiB",
		 with([](Knobs &k) { k.load_ns_per_kib = VFIO_MIG_EMU_MAX_LOAD_NS_PER_KIB + 1; }), ERANGE, "range", "A_KNOBS/KNOB_LOAD_NS_PER_KIB"},
		{"load us per resource",
		 with([](Knobs &k) { k.load_us_per_resource = VFIO_MIG_EMU_MAX_LOAD_US_PER_RESOURCE + 1; }), ERANGE,
		 "range", "A_KNOBS/KNOB_LOAD_US_PER_RESOURCE"},
		{"resource bytes", with([](Knobs &k) { k.resource_bytes = VFIO_MIG_EMU_MAX_RESOURCE_BYTES + 1; }),
		 ERANGE, "range", "A_KNOBS/KNOB_RESOURCE_BYTES"},
		{"reinit policy", with([](Knobs &k) { k.reinit_policy = static_cast<ReinitPolicy>(2); }), ERANGE,
		 "range", "A_KNOBS/KNOB_REINIT_POLICY, valid 0..1"},
		{"arc from state 9", with([](Knobs &k) { k.arc_delays.push_back({9, kAnyState, 1}); }), EINVAL,
		 "from state 9", "A_KNOBS/KNOB_ARC_DELAY/A_FROM_STATE"},
		{"arc to ERROR", with([](Knobs &k) { k.arc_delays.push_back({kAnyState, 0, 1}); }), EINVAL,
		 "to state 0", "A_KNOBS/KNOB_ARC_DELAY/A_TO_STATE"},
		{"arc delay above the limit",
		 with([](Knobs &k) { k.arc_delays.push_back({kAnyState, kAnyState, VFIO_MIG_EMU_MAX_DELAY_US + 1}); }),
		 ERANGE, "range", "A_KNOBS/KNOB_ARC_DELAY/KNOB_DELAY_US"},
	};
	Knobs before = nl()->set_knobs(u, Knobs{});
	for (const BadKnob &b : bad) {
		SCOPED_TRACE(b.what);
		Knobs k = b.knobs;
		k.dirty_rate = k.dirty_rate.value_or(5); // a valid change riding along
		EXPECT_CONTROL_ERROR(nl()->set_knobs(u, k), b.err, b.text);
		auto e = control_error([&] { nl()->set_knobs(u, k); });
		ASSERT_TRUE(e);
		EXPECT_NE(e->attribute().find(b.attr), std::string::npos)
			<< "the extack points at \"" << e->attribute() << "\", want \"" << b.attr << "\"";
		Knobs after = nl()->set_knobs(u, Knobs{});
		EXPECT_EQ(after.dirty_rate, before.dirty_rate) << "a refused KNOBS_SET applied part of its values";
		EXPECT_EQ(after.arc_delays.size(), before.arc_delays.size());
		EXPECT_EQ(after.mem_size, before.mem_size);
	}
}

TEST_F(Knob, ArcDelayWithoutItsDelayIsRefused)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, src().label());
	std::size_t knobs = b.begin_nest(VFIO_MIG_EMU_A_KNOBS);
	std::size_t arc = b.begin_nest(VFIO_MIG_EMU_KNOB_ARC_DELAY);
	b.u32(VFIO_MIG_EMU_A_FROM_STATE, 1);
	b.end_nest(arc);
	b.end_nest(knobs);
	RawReply r = nl()->raw_request(VFIO_MIG_EMU_CMD_KNOBS_SET, b.data());
	EXPECT_EQ(errno_name(r.err), "EINVAL");
	EXPECT_NE(r.extack.find("DELAY_US"), std::string::npos) << r.extack;
}

} // namespace
} // namespace vfiomig::test
