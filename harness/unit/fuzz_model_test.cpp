// The fuzzer's model of the device: which results the uAPI allows for a
// SET, a region access, a device feature, a knob or a fault request.
#include <gtest/gtest.h>

#include <cerrno>

#include "model.hpp"
#include "vfio_mig_emu.h"

using namespace vfiomig;
using namespace vfiomig::fuzz;

namespace {
constexpr std::uint64_t kFull = kMigStopCopy | kMigP2P | kMigPreCopy;
constexpr std::uint32_t kGet = 1u << 16, kSet = 1u << 17, kProbe = 1u << 18;
constexpr std::uint64_t kMem = 1u << 20;
} // namespace

TEST(FuzzModel, SetPlanFollowsTheReferencePath)
{
	SetPlan p = plan_set(State::Running, static_cast<std::uint32_t>(State::StopCopy), kFull);
	ASSERT_FALSE(p.refused);
	// With P2P the kernel stops peer-to-peer first.
	EXPECT_EQ(p.path, (std::vector<State>{State::RunningP2P, State::Stop, State::StopCopy}));
	EXPECT_TRUE(p.returns_fd);
	EXPECT_FALSE(p.leaves_resuming);

	EXPECT_TRUE(plan_set(State::StopCopy, 6, kFull).refused); // STOP_COPY -> PRE_COPY
	EXPECT_TRUE(plan_set(State::Running, 6, kMigStopCopy).refused); // no PRE_COPY flag
	EXPECT_TRUE(plan_set(State::Running, 0, kFull).refused);   // ERROR is not settable
	EXPECT_TRUE(plan_set(State::Running, 8, kFull).refused);   // undefined
	EXPECT_TRUE(plan_set(State::Error, 2, kFull).refused);     // only reset leaves ERROR
	EXPECT_TRUE(plan_set(State::Error, 0, kFull).refused);     // not even in ERROR
	SetPlan same = plan_set(State::Stop, 1, kFull);            // already there: no arc
	EXPECT_FALSE(same.refused);
	EXPECT_TRUE(same.path.empty());

	SetPlan r = plan_set(State::Resuming, 2, kFull);
	EXPECT_TRUE(r.leaves_resuming);
	EXPECT_FALSE(r.returns_fd);
}

TEST(FuzzModel, FailedSetMayStopOnlyOnThePath)
{
	std::vector<State> path{State::Stop, State::StopCopy};
	EXPECT_EQ(arcs_to(State::Running, path, State::Running), 0u);
	EXPECT_EQ(arcs_to(State::Running, path, State::Stop), 1u);
	// The target itself is not a failure's resting place, nor an unrelated state.
	EXPECT_FALSE(arcs_to(State::Running, path, State::StopCopy));
	EXPECT_FALSE(arcs_to(State::Running, path, State::RunningP2P));
}

TEST(FuzzModel, ArcEffectsMatchTheSessionRules)
{
	EXPECT_EQ(arc_effect(State::Running, State::PreCopy), ArcEffect::StartSaving);
	EXPECT_EQ(arc_effect(State::Stop, State::StopCopy), ArcEffect::StartSaving);
	EXPECT_EQ(arc_effect(State::PreCopyP2P, State::StopCopy), ArcEffect::EnterStopCopy);
	EXPECT_EQ(arc_effect(State::PreCopy, State::PreCopyP2P), ArcEffect::None);
	EXPECT_EQ(arc_effect(State::StopCopy, State::Stop), ArcEffect::EndSaving);
	EXPECT_EQ(arc_effect(State::PreCopy, State::Running), ArcEffect::EndSaving);
	EXPECT_EQ(arc_effect(State::Stop, State::Resuming), ArcEffect::StartResuming);
	EXPECT_EQ(arc_effect(State::Resuming, State::Stop), ArcEffect::EndResuming);
}

TEST(FuzzModel, RegionRulesFollowTheUapiHeader)
{
	// Config space: any size inside, every state.
	EXPECT_TRUE(expect_region(7, 0x40, 16, true, false, kMem, 0).allows(0));
	EXPECT_TRUE(expect_region(7, 250, 8, false, true, kMem, 0).allows(EINVAL));
	// BAR0: 4-byte aligned registers.
	EXPECT_TRUE(expect_region(0, 0x00c, 4, false, false, kMem, 0).allows(0));
	EXPECT_TRUE(expect_region(0, 0x00e, 4, false, true, kMem, 0).allows(EINVAL));
	EXPECT_TRUE(expect_region(0, 0x00c, 2, false, true, kMem, 0).allows(EINVAL));
	EXPECT_TRUE(expect_region(0, 0x00c, 4, true, true, kMem, 0).allows(EINVAL));   // read-only
	EXPECT_TRUE(expect_region(0, 0x100, 4, true, false, kMem, 0).allows(EBUSY));   // scratch in STOP
	EXPECT_TRUE(expect_region(0, 0x100, 4, true, true, kMem, 0).allows(0));
	EXPECT_TRUE(expect_region(0, 0x020, 4, true, true, kMem, 70000).allows(EINVAL)); // > MAX_DIRTY_STEPS
	EXPECT_FALSE(expect_region(0, 0x020, 4, true, true, kMem, 70000).allows(0));
	// BAR2: writes only where the device may change.
	EXPECT_TRUE(expect_region(2, kMem - 4096, 4096, true, true, kMem, 0).allows(0));
	EXPECT_TRUE(expect_region(2, kMem - 4096, 4097, false, true, kMem, 0).allows(EINVAL));
	EXPECT_TRUE(expect_region(2, 0, 1, true, false, kMem, 0).allows(EBUSY));
	EXPECT_FALSE(expect_region(2, 0, 1, true, false, kMem, 0).allows(0));
	// BAR2 of 3 pages is 4 pages long: the tail is there, past it nothing.
	EXPECT_TRUE(expect_region(2, 3 * 4096, 4096, false, true, 3 * 4096, 0).allows(0));
	EXPECT_TRUE(expect_region(2, 3 * 4096 - 8, 16, true, true, 3 * 4096, 0).allows(0));
	EXPECT_TRUE(expect_region(2, 3 * 4096, 4, true, false, 3 * 4096, 0).allows(EBUSY));
	EXPECT_TRUE(expect_region(2, 4 * 4096, 1, false, true, 3 * 4096, 0).allows(EINVAL));
	EXPECT_FALSE(expect_region(2, 4 * 4096 - 1, 2, false, true, 3 * 4096, 0).allows(0));
	// Size-0 regions.
	EXPECT_TRUE(expect_region(1, 0, 4, false, true, kMem, 0).allows(EINVAL));
	EXPECT_TRUE(state_writable(State::PreCopyP2P));
	EXPECT_FALSE(state_writable(State::StopCopy));
}

TEST(FuzzModel, FeatureRulesFollowTheVfioCore)
{
	EXPECT_EQ(expect_feature(1 | kGet, 16, kFull).out, FeatureOut::MigrationFlags);
	EXPECT_TRUE(expect_feature(1 | kSet, 16, kFull).expect.allows(EINVAL));
	EXPECT_TRUE(expect_feature(1 | kGet, 7, kFull).expect.allows(EINVAL));    // argsz below the header
	EXPECT_TRUE(expect_feature(1 | kGet, 12, kFull).expect.allows(EINVAL));   // payload too small
	EXPECT_TRUE(expect_feature(1 | kProbe | kGet, 8, kFull).expect.allows(0)); // probe needs no payload
	EXPECT_TRUE(expect_feature(2 | kGet | kSet, 16, kFull).expect.allows(EINVAL));
	EXPECT_TRUE(expect_feature(2 | kGet | (1u << 20), 16, kFull).expect.allows(EINVAL)); // undefined flag
	EXPECT_TRUE(expect_feature(4 | kSet, 64, kFull).expect.allows(ENOTTY));   // no DMA logging
	EXPECT_TRUE(expect_feature(9 | kGet, 16, kFull).data_size_site);
	FeatureExpect v2 = expect_feature(12 | kSet, 8, kFull);
	EXPECT_TRUE(v2.expect.allows(0));
	EXPECT_TRUE(v2.opts_in);
	EXPECT_FALSE(expect_feature(12 | kSet | kProbe, 8, kFull).opts_in);
	EXPECT_TRUE(expect_feature(12 | kGet, 8, kFull).expect.allows(EINVAL));
	EXPECT_TRUE(expect_feature(12 | kSet, 8, kMigStopCopy).expect.allows(ENOTTY));
	EXPECT_TRUE(expect_feature(13 | kGet, 16, kFull).expect.allows(ENOTTY));
}

TEST(FuzzModel, KnobRequestsAreJudgedByTheirLimits)
{
	int valid = 0, invalid = 0;
	for (const Op &op : generate_ops(11, 0, 20000, 1)) {
		if (op.kind != OpKind::Knob)
			continue;
		KnobRequest k = knob_request(op);
		Expect closed = expect_knob(k, false);
		EXPECT_EQ(closed.allows(0), k.valid) << k.str();
		if (k.sel == kKnobMemSize && k.valid) {
			EXPECT_TRUE(expect_knob(k, true).allows(EBUSY)) << k.str();
		}
		if (k.sel == kKnobArcDelay && k.valid) {
			EXPECT_LE(k.value, 1000u) << "arc delays stay short so runs stay fast";
		}
		(k.valid ? valid : invalid)++;
	}
	EXPECT_GT(valid, invalid);
	EXPECT_GT(invalid, 0);
}

TEST(FuzzModel, FaultRequestsNeverArmToErrorAtDataSites)
{
	int valid = 0, invalid = 0;
	for (const Op &op : generate_ops(12, 0, 40000, 1)) {
		if (op.kind != OpKind::FaultAdd)
			continue;
		FaultRequest f = fault_request(op);
		if (f.site == VFIO_MIG_EMU_SITE_READ || f.site == VFIO_MIG_EMU_SITE_WRITE ||
		    f.site == VFIO_MIG_EMU_SITE_PRECOPY_INFO) {
			EXPECT_NE(f.effect, static_cast<std::uint32_t>(VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR));
		}
		if (f.valid) {
			EXPECT_TRUE(fault_effect_allowed(f.site, f.effect)) << f.str();
			if (f.err) {
				EXPECT_TRUE(*f.err >= 1 && *f.err <= VFIO_MIG_EMU_MAX_FAULT_ERRNO) << f.str();
			}
			EXPECT_EQ(f.delay_us.has_value(), f.effect == VFIO_MIG_EMU_EFFECT_DELAY) << f.str();
		}
		(f.valid ? valid : invalid)++;
	}
	EXPECT_GT(valid, invalid);
	EXPECT_GT(invalid, 0);
	FaultRequest ok;
	ok.site = VFIO_MIG_EMU_SITE_READ;
	ok.effect = VFIO_MIG_EMU_EFFECT_FAIL;
	ok.valid = true;
	EXPECT_TRUE(expect_fault_add(ok, 63).allows(0));
	EXPECT_TRUE(expect_fault_add(ok, 64).allows(ENOSPC));
}

TEST(FuzzModel, FaultValidityFollowsWhatIsSent)
{
	// Found by the fuzzer (seed 3): a FAIL fault whose misuse draw sent no
	// DELAY_US was judged invalid though every attribute sent was fine.
	Op op{OpKind::FaultAdd, 3, 1, 0x9d9102c9b9423fb6, 0x0ebef66e960a7a8e, 0x78b135fa0e32919a};
	FaultRequest f = fault_request(op);
	EXPECT_FALSE(f.delay_us.has_value());
	EXPECT_TRUE(f.valid) << f.str();
}

TEST(FuzzModel, InitialBytesOnlyDecreaseExceptAtReinit)
{
	EXPECT_TRUE(initial_bytes_ok(std::nullopt, 100, false));
	EXPECT_TRUE(initial_bytes_ok(100, 100, false));
	EXPECT_TRUE(initial_bytes_ok(100, 40, false));
	EXPECT_FALSE(initial_bytes_ok(40, 100, false));
	EXPECT_TRUE(initial_bytes_ok(40, 100, true));
}

TEST(FuzzModel, ExpectDescribesItsOutcomes)
{
	EXPECT_EQ(Expect::success().or_err(EBUSY).str(), "ok or EBUSY");
	EXPECT_EQ(Expect::fail(EINVAL).str(), "EINVAL");
	EXPECT_FALSE(Expect::fail(EINVAL).allows(0));
}
