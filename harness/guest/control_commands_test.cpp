// Every control-plane command answers as the uAPI header documents (list, stats, workload, counters, faults).
#include "control_expect.hpp"

#include <algorithm>

namespace vfiomig::test {
namespace {

using namespace control;

class Control : public FullProfileTest {};

TEST_F(Control, ListsEveryInstance)
{
	Device &d = dst(); // a second instance
	auto devs = nl()->devices();
	auto has = [&](const std::string &uuid) {
		return std::any_of(devs.begin(), devs.end(), [&](const DeviceInfo &i) { return i.uuid == uuid; });
	};
	EXPECT_TRUE(has(src().label()));
	EXPECT_TRUE(has(d.label()));
	EXPECT_EQ(devs.size(), list_instances().size()) << "DEV_GET dump vs sysfs";
	for (const DeviceInfo &i : devs) {
		EXPECT_LT(i.profile, static_cast<std::uint32_t>(VFIO_MIG_EMU_PROFILE_COUNT)) << i.uuid;
		EXPECT_LT(i.state, kNumStates) << i.uuid;
		EXPECT_GE(i.mem_size, static_cast<std::uint64_t>(VFIO_MIG_EMU_MIN_MEM_SIZE)) << i.uuid;
	}
}

TEST_F(Control, StatsCountLiveObjects)
{
	Stats before = nl()->stats();
	EXPECT_EQ(before.devices, nl()->devices().size());
	auto s = src().set_state(State::StopCopy);
	ASSERT_TRUE(s.has_data());
	Stats during = nl()->stats();
	EXPECT_EQ(during.files, before.files + 1) << "a saving session is a live file";
	s.data.close();
	src().set_state(State::Stop);
}

TEST_F(Control, WorkloadDirtiesPagesAndAddsResources)
{
	Device &dev = src();
	std::uint32_t d0 = emu::digest(dev);
	nl()->workload(dev.label(), Workload::Dirty, 4);
	EXPECT_NE(emu::digest(dev), d0) << "WORKLOAD DIRTY changed nothing";
	nl()->workload(dev.label(), Workload::Reconfig, 3);
	EXPECT_EQ(emu::read_regs(dev).nr_resources, 3u);
	EXPECT_EQ(nl()->device(dev.label()).nr_resources, 3u);
	EXPECT_CONTROL_ERROR(nl()->workload(dev.label(), Workload::Reconfig, VFIO_MIG_EMU_MAX_RESOURCES), ENOSPC,
			     "resources");
	EXPECT_EQ(emu::read_regs(dev).nr_resources, 3u) << "a refused reconfigure added resources";
	EXPECT_CONTROL_ERROR(nl()->workload(dev.label(), Workload::Dirty, VFIO_MIG_EMU_MAX_DIRTY_STEPS + 1), ERANGE,
			     "");
	dev.set_state(State::Stop);
	EXPECT_CONTROL_ERROR(nl()->workload(dev.label(), Workload::Dirty, 1), EBUSY, "RUNNING");
}

TEST_F(Control, CountersCountAndResetToZero)
{
	Device &dev = src();
	nl()->reset_counters(dev.label());
	dev.set_state(State::Stop);
	dev.set_state(State::Running);
	(void)dev.stop_copy_size();
	ASSERT_OK(dev.try_reset());
	Counters c = nl()->device(dev.label()).counters;
	EXPECT_GE(c.transitions, 2u);
	EXPECT_EQ(c.resets, 1u);
	nl()->reset_counters(dev.label());
	c = nl()->device(dev.label()).counters;
	EXPECT_EQ(c.transitions + c.transition_errors + c.bytes_saved + c.bytes_loaded + c.precopy_queries +
			  c.faults_hit + c.resets,
		  0u);
}

TEST_F(Control, FaultsAreListedWithCountsAndClearedByIdOrAll)
{
	Device &dev = src();
	FaultGuard guard(dev.label());
	Fault a = fault(Site::DataSize, Effect::Fail);
	a.trigger = Trigger::Nth;
	a.n = 2;
	a.err = ENOSPC;
	Fault b = fault(Site::SetState, Effect::Delay);
	b.from = static_cast<std::uint32_t>(State::Stop);
	b.delay_us = 1;
	std::uint32_t ia = nl()->add_fault(dev.label(), a);
	std::uint32_t ib = nl()->add_fault(dev.label(), b);
	EXPECT_NE(ia, ib);
	EXPECT_OK(dev.try_stop_copy_size());
	EXPECT_ERRNO(dev.try_stop_copy_size(), ENOSPC);
	auto list = nl()->faults(dev.label());
	ASSERT_EQ(list.size(), 2u);
	EXPECT_EQ(list[0].id, ia);
	EXPECT_EQ(list[0].site, Site::DataSize);
	EXPECT_EQ(list[0].trigger, Trigger::Nth);
	EXPECT_EQ(list[0].n, 2u);
	EXPECT_EQ(list[0].err, static_cast<std::uint32_t>(ENOSPC));
	EXPECT_EQ(list[0].calls, 2u);
	EXPECT_EQ(list[0].hits, 1u);
	EXPECT_EQ(list[1].from, static_cast<std::uint32_t>(State::Stop));
	EXPECT_EQ(list[1].to, kAnyState) << "TO defaults to ANY";
	EXPECT_EQ(list[1].trigger, Trigger::EveryNth) << "no trigger means every call";
	EXPECT_EQ(nl()->fault(dev.label(), ib).delay_us, 1u);

	nl()->clear_faults(dev.label(), ia);
	list = nl()->faults(dev.label());
	ASSERT_EQ(list.size(), 1u);
	EXPECT_EQ(list[0].id, ib);
	EXPECT_CONTROL_ERROR(nl()->clear_faults(dev.label(), ia), ENOENT, "no fault");
	EXPECT_CONTROL_ERROR(nl()->fault(dev.label(), ia), ENOENT, "no fault");
	nl()->clear_faults(dev.label());
	EXPECT_TRUE(nl()->faults(dev.label()).empty());
	EXPECT_OK(dev.try_stop_copy_size());
}

TEST_F(Control, SixtyFifthFaultIsRefused)
{
	Device &dev = src();
	FaultGuard guard(dev.label());
	Fault f = fault(Site::Open, Effect::Delay);
	f.delay_us = 1;
	for (int i = 0; i < VFIO_MIG_EMU_MAX_FAULTS; i++)
		nl()->add_fault(dev.label(), f);
	EXPECT_CONTROL_ERROR(nl()->add_fault(dev.label(), f), ENOSPC, "64");
	EXPECT_EQ(nl()->faults(dev.label()).size(), static_cast<std::size_t>(VFIO_MIG_EMU_MAX_FAULTS));
}

TEST_F(Control, UnknownDevicesAreNamedInTheError)
{
	const std::string ghost = "00000000-0000-0000-0000-000000000000";
	EXPECT_CONTROL_ERROR(nl()->device(ghost), ENODEV, ghost);
	EXPECT_CONTROL_ERROR(nl()->faults(ghost), ENODEV, ghost);
	EXPECT_CONTROL_ERROR(nl()->reset_counters(ghost), ENODEV, ghost);
	EXPECT_CONTROL_ERROR(nl()->device("6f1c"), EINVAL, "not a uuid");
	auto e = control_error([&] { nl()->device(ghost); });
	ASSERT_TRUE(e);
	EXPECT_EQ(e->uuid(), ghost);
	EXPECT_EQ(e->call(), "DEV_GET");
	EXPECT_NE(std::string(e->what()).find(e->extack()), std::string::npos) << "what() carries the extack";
}

} // namespace
} // namespace vfiomig::test
