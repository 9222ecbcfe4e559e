// Control-plane names parse and print both ways, and events decode from their attributes.
#include <gtest/gtest.h>

#include "vfio_mig_emu.h"
#include "vfiomig/control.hpp"

namespace vfiomig::control {
namespace {

TEST(ControlNames, EverySitePrintsAndParsesBack)
{
	for (Site s : kAllSites) {
		std::string n = site_name(s);
		EXPECT_EQ(parse_site(n), s) << n;
	}
	EXPECT_EQ(parse_site("set-state"), Site::SetState);
	EXPECT_EQ(parse_site("precopy_info"), Site::PrecopyInfo);
	EXPECT_EQ(site_name(Site::DataSize), "DATA_SIZE");
	EXPECT_FALSE(parse_site("ioctl"));
	EXPECT_FALSE(parse_site(""));
}

TEST(ControlNames, EveryEffectAndTriggerPrintsAndParsesBack)
{
	for (Effect e : kAllEffects)
		EXPECT_EQ(parse_effect(effect_name(e)), e) << effect_name(e);
	for (Trigger t : kAllTriggers)
		EXPECT_EQ(parse_trigger(trigger_name(t)), t) << trigger_name(t);
	EXPECT_EQ(parse_effect("fail-to-error"), Effect::FailToError);
	EXPECT_EQ(parse_trigger("every_nth"), Trigger::EveryNth);
	EXPECT_FALSE(parse_effect("explode"));
	EXPECT_EQ(effect_name(static_cast<Effect>(99)), "EFFECT(99)");
}

TEST(ControlNames, KnobsPoliciesWorkloadsAndEventKindsRoundTrip)
{
	for (std::uint32_t k = VFIO_MIG_EMU_KNOB_ARC_DELAY; k <= VFIO_MIG_EMU_KNOB_MAX; k++) {
		if (k == VFIO_MIG_EMU_KNOB_DELAY_US)
			continue; // inside ARC_DELAY, not a knob of its own
		EXPECT_EQ(parse_knob(knob_name(k)), k) << knob_name(k);
	}
	EXPECT_EQ(parse_knob("mem-size"), static_cast<std::uint32_t>(VFIO_MIG_EMU_KNOB_MEM_SIZE));
	EXPECT_EQ(parse_reinit_policy("discard"), ReinitPolicy::Discard);
	EXPECT_EQ(parse_reinit_policy("FOLD"), ReinitPolicy::Fold);
	EXPECT_EQ(parse_workload("reconfig"), Workload::Reconfig);
	EXPECT_EQ(static_cast<std::uint32_t>(*parse_workload("dirty")),
		  static_cast<std::uint32_t>(VFIO_MIG_EMU_WORKLOAD_DIRTY));
	for (auto k : {EventKind::State, EventKind::Session, EventKind::Fault, EventKind::Critical, EventKind::Reset})
		EXPECT_EQ(parse_event_kind(event_kind_name(k)), k);
}

TEST(ControlNames, ArcStatesAreSettableStatesOrAny)
{
	EXPECT_EQ(parse_arc_state("ANY"), kAnyState);
	EXPECT_EQ(parse_arc_state("*"), kAnyState);
	EXPECT_EQ(parse_arc_state("stop-copy"), static_cast<std::uint32_t>(State::StopCopy));
	EXPECT_EQ(parse_arc_state("PRE_COPY_P2P"), static_cast<std::uint32_t>(State::PreCopyP2P));
	EXPECT_FALSE(parse_arc_state("ERROR")) << "ERROR is never an arc end";
	EXPECT_FALSE(parse_arc_state("FLYING"));
	EXPECT_EQ(arc_state_name(kAnyState), "ANY");
	EXPECT_EQ(arc_state_name(1), "STOP");
}

TEST(ControlNames, ErrnosParseByNameOrNumber)
{
	EXPECT_EQ(parse_errno("EIO"), EIO);
	EXPECT_EQ(parse_errno("exdev"), EXDEV);
	EXPECT_EQ(parse_errno("eproto"), EPROTO);
	EXPECT_EQ(parse_errno("18"), 18);
	EXPECT_FALSE(parse_errno(""));
	EXPECT_FALSE(parse_errno("12345678"));
	EXPECT_FALSE(parse_errno("EWHAT"));
	// FAULT_ERRNO takes what userspace can see, 1..133 (EHWPOISON).
	EXPECT_EQ(parse_errno("133"), 133);
	EXPECT_EQ(parse_errno("EHWPOISON"), 133);
	EXPECT_FALSE(parse_errno("512")) << "ERESTARTSYS is kernel-internal";
	EXPECT_FALSE(parse_errno("134"));
	EXPECT_FALSE(parse_errno("0"));
}

TEST(ControlNames, EffectsAreAllowedExactlyWhereTheUapiTableSays)
{
	// The table in vfio_mig_emu.h ("site FAIL FAIL_TO_ERROR DELAY ...").
	const char *table[] = {
		"SET_STATE    x x x - - -", "READ         x x x x x -", "WRITE        x x x x x -",
		"PRECOPY_INFO x x x - - x", "DATA_SIZE    x x x - - x", "RESET        x x x - - -",
		"OPEN         x - x - - -",
	};
	for (const char *row : table) {
		std::string r(row);
		Site s = *parse_site(r.substr(0, r.find(' ')));
		std::string marks = r.substr(13);
		for (std::size_t i = 0; i < std::size(kAllEffects); i++)
			EXPECT_EQ(effect_allowed(s, kAllEffects[i]), marks[2 * i] == 'x')
				<< site_name(s) << " " << effect_name(kAllEffects[i]);
	}
}

TEST(ControlEvents, StateEventDecodesFromItsAttributes)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, "6f1c0000-0000-0000-0000-000000000001")
		.u64(VFIO_MIG_EMU_A_EVENT_SEQ, 7)
		.u64(VFIO_MIG_EMU_A_TIMESTAMP_NS, 123456789)
		.u32(VFIO_MIG_EMU_A_FROM_STATE, 5)
		.u32(VFIO_MIG_EMU_A_TO_STATE, 1)
		.u32(VFIO_MIG_EMU_A_ERRNO, EXDEV)
		.u32(VFIO_MIG_EMU_A_STATE, 5);
	auto e = decode_event(VFIO_MIG_EMU_CMD_EVENT_STATE, b.data());
	ASSERT_TRUE(e);
	EXPECT_EQ(e->kind, EventKind::State);
	EXPECT_EQ(e->uuid, "6f1c0000-0000-0000-0000-000000000001");
	EXPECT_EQ(e->seq, 7u);
	EXPECT_EQ(e->timestamp_ns, 123456789u);
	EXPECT_EQ(e->from, 5u);
	EXPECT_EQ(e->to, 1u);
	EXPECT_EQ(e->err, static_cast<std::uint32_t>(EXDEV));
	EXPECT_EQ(describe(*e), "STATE RUNNING_P2P->STOP failed EXDEV, now RUNNING_P2P");
}

TEST(ControlEvents, FaultEventCarriesTheFaultNest)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, "u").u64(VFIO_MIG_EMU_A_EVENT_SEQ, 1).u32(VFIO_MIG_EMU_A_FAULT_ID, 3);
	std::size_t n = b.begin_nest(VFIO_MIG_EMU_A_FAULT);
	b.u32(VFIO_MIG_EMU_FAULT_ID, 3)
		.u32(VFIO_MIG_EMU_FAULT_SITE, VFIO_MIG_EMU_SITE_READ)
		.u32(VFIO_MIG_EMU_FAULT_TRIGGER, VFIO_MIG_EMU_TRIGGER_NTH)
		.u32(VFIO_MIG_EMU_FAULT_N, 2)
		.u32(VFIO_MIG_EMU_FAULT_EFFECT, VFIO_MIG_EMU_EFFECT_FAIL)
		.u32(VFIO_MIG_EMU_FAULT_ERRNO, EIO)
		.u64(VFIO_MIG_EMU_FAULT_CALLS, 2)
		.u64(VFIO_MIG_EMU_FAULT_HITS, 1);
	b.end_nest(n);
	auto e = decode_event(VFIO_MIG_EMU_CMD_EVENT_FAULT, b.data());
	ASSERT_TRUE(e);
	ASSERT_TRUE(e->fault);
	EXPECT_EQ(e->fault_id, 3u);
	EXPECT_EQ(e->fault->site, Site::Read);
	EXPECT_EQ(e->fault->hits, 1u);
	EXPECT_EQ(describe(*e->fault), "READ NTH 2 FAIL EIO (calls 2, hits 1)");
}

TEST(ControlEvents, TruncatedAttributesDecodeWithoutReadingPastTheEnd)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, "abc").u32(VFIO_MIG_EMU_A_NR_RESOURCES, 4);
	Bytes raw = b.data();
	for (std::size_t len = 0; len <= raw.size(); len++) {
		auto e = decode_event(VFIO_MIG_EMU_CMD_EVENT_CRITICAL, ByteSpan(raw.data(), len));
		ASSERT_TRUE(e);
		EXPECT_LE(e->nr_resources, 4u);
	}
	EXPECT_FALSE(decode_event(VFIO_MIG_EMU_CMD_DEV_GET, raw)) << "not an event command";
}

} // namespace
} // namespace vfiomig::control
