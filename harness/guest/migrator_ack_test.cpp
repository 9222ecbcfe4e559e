// vfiomig::Migrator against emulated devices: digests, legacy vs per-device switchover-ack, late ACK (counted as QEMU does), the final query (which devices, before PRE_COPY_P2P), the opt-in on both sides, critical data and downtime.
#include "common.hpp"
#include "fresh.hpp"
#include "vfiomig/migrator.hpp"

namespace vfiomig::test {
namespace {

control::Knobs load_cost(std::uint32_t us_per_resource)
{
	control::Knobs k;
	k.load_us_per_resource = us_per_resource;
	return k;
}

class Migrate : public ::testing::Test {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("fresh instances, digests and cost model");
		if (!module_loaded())
			GTEST_SKIP() << "vfio_mig_emu is not loaded";
		SKIP_UNLESS_OFFERED(Profile::Full);
	}
	/// `n` source/destination pairs of the full profile, sources scribbled.
	void make(std::size_t n)
	{
		for (std::size_t i = 0; i < n; i++) {
			src_.push_back(Fresh::make(Profile::Full));
			dst_.push_back(Fresh::make(Profile::Full));
			ASSERT_OK(emu::scribble(src_.back()->dev, static_cast<std::uint32_t>(100 + i), 8));
			ASSERT_OK(emu::reconfigure(src_.back()->dev, 2));
		}
	}
	std::vector<MigrationPair> pairs()
	{
		std::vector<MigrationPair> v;
		for (std::size_t i = 0; i < src_.size(); i++)
			v.push_back({&src_[i]->dev, &dst_[i]->dev});
		return v;
	}
	MigratorOptions options(AckMode ack, bool v2 = true)
	{
		MigratorOptions o;
		o.ack = ack;
		o.precopy_v2 = v2;
		o.digest = [](Device &d) -> std::optional<std::uint32_t> { return emu::digest(d); };
		return o;
	}
	control::Client *control_or_skip()
	{
		std::string why;
		control::Client *c = nl(&why);
		if (!c)
			ADD_FAILURE() << "no control plane: " << why;
		return c;
	}
	std::vector<std::unique_ptr<Fresh>> src_, dst_;
};

void expect_migrated(const MigrationReport &r)
{
	ASSERT_TRUE(r.ok) << r.error;
	EXPECT_TRUE(r.digests_match());
	for (const DeviceReport &d : r.devices) {
		EXPECT_TRUE(d.src_digest && d.dst_digest && *d.src_digest == *d.dst_digest) << d.label;
		EXPECT_GT(d.precopy_bytes, 0u) << d.label;
		EXPECT_GT(d.stop_copy_bytes, 0u) << d.label;
		EXPECT_GE(d.running_ms, d.downtime_ms) << d.label;
		EXPECT_GE(r.downtime_ms, d.running_ms) << d.label;
	}
}

TEST_F(Migrate, FourDevicesInParallelKeepTheirDigests)
{
	ASSERT_NO_FATAL_FAILURE(make(4));
	MigrationReport r = Migrator(pairs(), options(AckMode::PerDevice)).run();
	expect_migrated(r);
	EXPECT_EQ(r.acks_sent, 4u) << "one ACK per device";
	for (std::size_t i = 0; i < 4; i++) {
		EXPECT_EQ(src_[i]->dev.get_state(), State::Stop);
		EXPECT_EQ(dst_[i]->dev.get_state(), State::Running);
	}
}

TEST_F(Migrate, SequentialSwitchoverKeepsTheDigests)
{
	ASSERT_NO_FATAL_FAILURE(make(2));
	MigratorOptions o = options(AckMode::PerDevice);
	o.parallel = false;
	MigrationReport r = Migrator(pairs(), o).run();
	expect_migrated(r);
	EXPECT_FALSE(r.parallel);
}

TEST_F(Migrate, LegacyAckIsSentOnceForAllDevices)
{
	ASSERT_NO_FATAL_FAILURE(make(3));
	MigratorOptions o = options(AckMode::Legacy, false);
	o.min_iterations = 3;
	o.before_iteration = [this](unsigned it) {
		if (it == 1)
			emu::reconfigure(src_[0]->dev, 2).value();
	};
	MigrationReport r = Migrator(pairs(), o).run();
	expect_migrated(r);
	EXPECT_EQ(r.acks_sent, 1u) << "legacy switchover-ack: one for all devices, once";
	for (const DeviceReport &d : r.devices) {
		EXPECT_FALSE(d.v2);
		EXPECT_EQ(d.reinits, 0u) << "REINIT without the opt-in";
		EXPECT_EQ(d.ack_requests, 1u);
	}
}

TEST_F(Migrate, ReinitAfterAnAckRequestsANewOne)
{
	ASSERT_NO_FATAL_FAILURE(make(2));
	MigratorOptions o = options(AckMode::PerDevice);
	o.min_iterations = 4;
	o.before_iteration = [this](unsigned it) {
		if (it == 2)
			emu::reconfigure(src_[1]->dev, 3).value();
	};
	MigrationReport r = Migrator(pairs(), o).run();
	expect_migrated(r);
	ASSERT_TRUE(r.devices[1].v2);
	EXPECT_EQ(r.devices[1].reinits, 1u);
	EXPECT_EQ(r.devices[1].ack_requests, 2u) << "a REINIT after the ACK must request a new one";
	EXPECT_EQ(r.devices[1].acks, 2u);
	EXPECT_EQ(r.devices[0].acks, 1u);
	EXPECT_EQ(r.acks_sent, 3u);
	EXPECT_EQ(emu::read_regs(dst_[1]->dev).nr_resources, 5u);
}

TEST_F(Migrate, AckRequestedAfterTheSwitchoverDecisionFailsTheMigration)
{
	ASSERT_NO_FATAL_FAILURE(make(2));
	MigratorOptions o = options(AckMode::PerDevice);
	o.after_decision = [this] { emu::reconfigure(src_[1]->dev, 1).value(); };
	MigrationReport r = Migrator(pairs(), o).run();
	ASSERT_FALSE(r.ok) << "the final query missed a REINIT in the gap";
	// QEMU 11.1's wording counts the devices; the name is the detail.
	EXPECT_NE(r.error.find("Switchover ACK was requested by 1 devices during switchover"), std::string::npos)
		<< r.error;
	EXPECT_NE(r.error.find("after the switchover decision"), std::string::npos) << r.error;
	EXPECT_NE(r.error.find(src_[1]->dev.label()), std::string::npos) << "the error names the device: " << r.error;
	EXPECT_TRUE(r.devices[1].late_ack_request);
	EXPECT_FALSE(r.devices[0].late_ack_request);
	EXPECT_EQ(r.devices[1].reinits, 1u);
	// The VM keeps running on the source.
	for (auto &s : src_)
		EXPECT_EQ(s->dev.get_state(), State::Running);
}

TEST_F(Migrate, AckRequestedByTwoDevicesAfterTheDecisionIsCountedAsQemuDoes)
{
	ASSERT_NO_FATAL_FAILURE(make(3));
	MigratorOptions o = options(AckMode::PerDevice);
	o.after_decision = [this] {
		emu::reconfigure(src_[0]->dev, 1).value();
		emu::reconfigure(src_[2]->dev, 1).value();
	};
	MigrationReport r = Migrator(pairs(), o).run();
	ASSERT_FALSE(r.ok);
	EXPECT_NE(r.error.find("Switchover ACK was requested by 2 devices during switchover"), std::string::npos)
		<< r.error;
	EXPECT_NE(r.error.find(src_[0]->dev.label()), std::string::npos) << r.error;
	EXPECT_NE(r.error.find(src_[2]->dev.label()), std::string::npos) << r.error;
	EXPECT_EQ(r.error.find(src_[1]->dev.label()), std::string::npos) << r.error;
	EXPECT_TRUE(r.devices[0].late_ack_request && r.devices[2].late_ack_request);
	EXPECT_FALSE(r.devices[1].late_ack_request);

	// The named option: the earlier message, naming the first device.
	src_.clear();
	dst_.clear();
	ASSERT_NO_FATAL_FAILURE(make(3));
	o.late_ack_names_first_device = true;
	r = Migrator(pairs(), o).run();
	ASSERT_FALSE(r.ok);
	EXPECT_EQ(r.error.find("requested by"), std::string::npos) << r.error;
	EXPECT_NE(r.error.find(src_[0]->dev.label() + " reported VFIO_PRECOPY_INFO_REINIT"), std::string::npos)
		<< r.error;
}

/// Where the precopy queries of source `dev` fell, from the module's event
/// log: a DELAY fault of 1 us on PRECOPY_INFO makes every query an event,
/// numbered with the arcs.
struct QueryOrder {
	unsigned before_p2p = 0;  ///< queries before PRE_COPY -> PRE_COPY_P2P
	unsigned in_p2p = 0;	  ///< between it and PRE_COPY_P2P -> STOP_COPY
	bool last_before_p2p_is_adjacent = false; ///< the event right before the arc is a query
	bool saw_p2p = false;
	std::string log;
};

QueryOrder query_order(const std::vector<control::Event> &evs)
{
	QueryOrder q;
	enum { Pre, P2P, After } at = Pre;
	const control::Event *prev = nullptr;
	for (const control::Event &e : evs) {
		q.log += (q.log.empty() ? "" : ", ") + control::describe(e);
		if (e.kind == control::EventKind::Fault && e.fault && e.fault->site == control::Site::PrecopyInfo) {
			if (at == Pre)
				q.before_p2p++;
			else if (at == P2P)
				q.in_p2p++;
		} else if (e.kind == control::EventKind::State && e.from && e.to && !e.err) {
			auto from = static_cast<State>(*e.from), to = static_cast<State>(*e.to);
			if (from == State::PreCopy && to == State::PreCopyP2P) {
				at = P2P;
				q.saw_p2p = true;
				q.last_before_p2p_is_adjacent = prev && prev->kind == control::EventKind::Fault;
			} else if (from == State::PreCopyP2P && to == State::StopCopy) {
				at = After;
			}
		}
		prev = &e;
	}
	return q;
}

class MigrateFinalQuery : public Migrate {
protected:
	/// Migrates one full-profile pair with `o`; returns the source's
	/// query order and how many precopy queries followed the decision.
	QueryOrder run_one(MigratorOptions o, unsigned &after_decision, Profile p = Profile::Full)
	{
		QueryOrder q;
		control::Client *c = control_or_skip();
		if (!c)
			return q;
		src_.push_back(Fresh::make(p));
		dst_.push_back(Fresh::make(p));
		EXPECT_OK(emu::scribble(src_[0]->dev, 5, 4));
		const std::string uuid = src_[0]->mdev->uuid();
		FaultGuard guard(uuid);
		control::Fault f;
		f.site = control::Site::PrecopyInfo;
		f.effect = control::Effect::Delay;
		f.delay_us = 1;
		control::EventSubscription sub;
		c->add_fault(uuid, f);
		std::uint64_t at_decision = 0;
		o.after_decision = [&] { at_decision = c->device(uuid).counters.precopy_queries; };
		MigrationReport r = Migrator(pairs(), o).run();
		EXPECT_TRUE(r.ok) << r.error;
		after_decision = static_cast<unsigned>(c->device(uuid).counters.precopy_queries - at_decision);
		std::vector<control::Event> evs;
		for (;;) {
			auto some = sub.drain(std::chrono::milliseconds(300));
			if (some.empty())
				break;
			for (auto &e : some)
				if (e.uuid == uuid)
					evs.push_back(std::move(e));
		}
		q = query_order(evs);
		EXPECT_EQ(r.devices[0].final_query, after_decision == 1) << q.log;
		return q;
	}
};

// QEMU 11.1: per-device ack, a device with P2P: one final query after the
// decision, before PRE_COPY -> PRE_COPY_P2P, none in PRE_COPY_P2P.
TEST_F(MigrateFinalQuery, ComesBeforePreCopyP2PForAP2PDeviceInPerDeviceMode)
{
	unsigned after = 0;
	QueryOrder q = run_one(options(AckMode::PerDevice), after);
	if (IsSkipped() || HasFailure())
		return;
	ASSERT_TRUE(q.saw_p2p) << q.log;
	EXPECT_EQ(after, 1u) << "one final query after the switchover decision";
	EXPECT_EQ(q.in_p2p, 0u) << "QEMU 11.1 queries before PRE_COPY -> PRE_COPY_P2P, not in it: " << q.log;
	EXPECT_TRUE(q.last_before_p2p_is_adjacent) << "the final query comes right before the arc: " << q.log;
}

// The named option: the earlier order, the final query in PRE_COPY_P2P.
TEST_F(MigrateFinalQuery, ComesInPreCopyP2PWhenAsked)
{
	unsigned after = 0;
	MigratorOptions o = options(AckMode::PerDevice);
	o.final_query_after_p2p = true;
	QueryOrder q = run_one(o, after);
	if (IsSkipped() || HasFailure())
		return;
	EXPECT_EQ(after, 1u);
	EXPECT_EQ(q.in_p2p, 1u) << q.log;
}

// QEMU 11.1 runs no final check in legacy ack mode; the named option
// brings back the earlier query for every device in every mode.
TEST_F(MigrateFinalQuery, IsSkippedInLegacyModeUnlessEveryDeviceIsAsked)
{
	unsigned after = 0;
	QueryOrder q = run_one(options(AckMode::Legacy), after);
	if (IsSkipped() || HasFailure())
		return;
	EXPECT_EQ(after, 0u) << "legacy ack: no final query: " << q.log;
	EXPECT_EQ(q.in_p2p, 0u) << q.log;

	src_.clear();
	dst_.clear();
	MigratorOptions o = options(AckMode::Legacy);
	o.final_query_every_device = true;
	q = run_one(o, after);
	EXPECT_EQ(after, 1u) << "final_query_every_device: " << q.log;
}

// QEMU 11.1 runs the final check from the prepare handler only devices
// with P2P register: a PRE_COPY device without P2P gets none.
TEST_F(MigrateFinalQuery, IsSkippedForADeviceWithoutP2P)
{
	SKIP_UNLESS_OFFERED(Profile::PreCopy);
	unsigned after = 0;
	QueryOrder q = run_one(options(AckMode::PerDevice), after, Profile::PreCopy);
	if (IsSkipped() || HasFailure())
		return;
	EXPECT_FALSE(q.saw_p2p) << q.log;
	EXPECT_EQ(after, 0u) << "no P2P: no final query: " << q.log;
}

// QEMU 11.1 opts in at device set-up on both sides; the named option keeps
// the earlier opt-in per run on the source only. A destination refusing
// it (ENOTTY) stays v1 and the migration goes on.
TEST_F(Migrate, OptsInOnSourceAndDestinationAtSetUp)
{
	ASSERT_NO_FATAL_FAILURE(make(2));
	control::Client *c = control_or_skip();
	if (!c)
		return;
	control::Knobs refuse;
	refuse.refuse_precopy_v2 = true;
	try {
		c->set_knobs(dst_[1]->mdev->uuid(), refuse);
	} catch (const control::ControlError &e) {
		GTEST_SKIP() << "the refusal knob is not available here: " << e.what();
	}
	Migrator m(pairs(), options(AckMode::PerDevice));
	MigrationReport r = m.run();
	expect_migrated(r);
	EXPECT_TRUE(r.devices[0].v2 && r.devices[1].v2);
	EXPECT_TRUE(r.devices[0].dst_v2) << "QEMU 11.1 opts the destination in too";
	EXPECT_FALSE(r.devices[1].dst_v2) << "the destination refused (ENOTTY): it stays v1";

	src_.clear();
	dst_.clear();
	ASSERT_NO_FATAL_FAILURE(make(1));
	MigratorOptions o = options(AckMode::PerDevice);
	o.precopy_v2_per_run_source_only = true;
	r = Migrator(pairs(), o).run();
	expect_migrated(r);
	EXPECT_TRUE(r.devices[0].v2);
	EXPECT_FALSE(r.devices[0].dst_v2) << "the earlier behaviour: the source only";
}

TEST_F(Migrate, WithoutTheFinalQueryTheGapGoesToStopCopy)
{
	ASSERT_NO_FATAL_FAILURE(make(1));
	control::Client *c = control_or_skip();
	if (!c)
		return;
	c->set_knobs(dst_[0]->mdev->uuid(), load_cost(20000));
	MigratorOptions o = options(AckMode::PerDevice);
	o.final_query = false;
	o.after_decision = [this] { emu::reconfigure(src_[0]->dev, 5).value(); };
	MigrationReport r = Migrator(pairs(), o).run();
	expect_migrated(r); // the stream is still complete...
	EXPECT_EQ(r.devices[0].reinits, 0u);
	EXPECT_GE(r.devices[0].downtime_ms, 100.0) << "...but the new critical data was loaded during downtime";
}

// The seeds' effect in one device: v1 cannot tell critical data from dirty
// memory and switches over with it unread; v2 sees REINIT and loads it in
// precopy before the ACK.
TEST_F(Migrate, ReinitMovesTheLoadOfNewCriticalDataOutOfDowntime)
{
	ASSERT_NO_FATAL_FAILURE(make(1));
	control::Client *c = control_or_skip();
	if (!c)
		return;
	c->set_knobs(dst_[0]->mdev->uuid(), load_cost(10000));
	double downtime[2] = {};
	for (int v2 = 0; v2 < 2; v2++) {
		src_[0] = Fresh::make(Profile::Full);
		dst_[0]->dev.reset();
		ASSERT_OK(emu::scribble(src_[0]->dev, 7, 8));
		MigratorOptions o = options(AckMode::PerDevice, v2 != 0);
		o.min_iterations = 3;
		o.before_iteration = [this](unsigned it) {
			if (it == 2)
				emu::reconfigure(src_[0]->dev, 12).value();
		};
		MigrationReport r = Migrator(pairs(), o).run();
		expect_migrated(r);
		downtime[v2] = r.devices[0].downtime_ms;
		EXPECT_EQ(r.devices[0].reinits, v2 ? 1u : 0u);
	}
	EXPECT_GE(downtime[0], 120.0) << "v1: 12 resources at 10 ms should load during downtime";
	EXPECT_LT(downtime[1], downtime[0] - 80.0) << "v2 should have loaded them in precopy";
}

TEST_F(Migrate, GarbageSizesNeverCrashTheConsumer)
{
	ASSERT_NO_FATAL_FAILURE(make(2));
	control::Client *c = control_or_skip();
	if (!c)
		return;
	FaultGuard guard(src_[0]->mdev->uuid());
	for (control::Site site : {control::Site::DataSize, control::Site::PrecopyInfo}) {
		control::Fault f;
		f.site = site;
		f.effect = control::Effect::GarbageSize;
		c->add_fault(src_[0]->mdev->uuid(), f);
	}
	MigrationReport r = Migrator(pairs(), options(AckMode::PerDevice)).run();
	expect_migrated(r);
	EXPECT_TRUE(r.devices[0].size_implausible);
	EXPECT_EQ(r.devices[0].reported_stop_copy_size, UINT64_MAX);
	EXPECT_FALSE(r.devices[1].size_implausible);
	EXPECT_GT(r.devices[1].expected_ms, 0.0);
}

TEST_F(Migrate, DevicesWithoutPreCopyMigrateInStopCopy)
{
	src_.push_back(Fresh::make(Profile::P2P));
	dst_.push_back(Fresh::make(Profile::P2P));
	src_.push_back(Fresh::make(Profile::Full));
	dst_.push_back(Fresh::make(Profile::Full));
	for (auto &s : src_)
		ASSERT_OK(emu::scribble(s->dev, 3, 4));
	MigrationReport r = Migrator(pairs(), options(AckMode::Legacy)).run();
	ASSERT_TRUE(r.ok) << r.error;
	EXPECT_TRUE(r.digests_match());
	EXPECT_FALSE(r.devices[0].precopy);
	EXPECT_EQ(r.devices[0].precopy_bytes, 0u);
	EXPECT_TRUE(r.devices[1].precopy);
}

} // namespace
} // namespace vfiomig::test
