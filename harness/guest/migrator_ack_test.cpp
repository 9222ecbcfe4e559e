// vfiomig::Migrator against emulated devices: digests, legacy vs per-device switchover-ack, late ACK, final query, critical data and downtime.
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
	EXPECT_NE(r.error.find("after the switchover decision"), std::string::npos) << r.error;
	EXPECT_NE(r.error.find(src_[1]->dev.label()), std::string::npos) << "the error names the device: " << r.error;
	EXPECT_EQ(r.devices[1].reinits, 1u);
	// The VM keeps running on the source.
	for (auto &s : src_)
		EXPECT_EQ(s->dev.get_state(), State::Running);
}

TEST_F(Migrate, WithoutTheFinalQueryTheGapGoesToStopCopy)
{
	ASSERT_NO_FATAL_FAILURE(make(1));
	control::Client *c = control_or_skip();
	if (!c)
		return;
	c->set_knobs(dst_[0]->mdev.uuid(), load_cost(20000));
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
	c->set_knobs(dst_[0]->mdev.uuid(), load_cost(10000));
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
	FaultGuard guard(src_[0]->mdev.uuid());
	for (control::Site site : {control::Site::DataSize, control::Site::PrecopyInfo}) {
		control::Fault f;
		f.site = site;
		f.effect = control::Effect::GarbageSize;
		c->add_fault(src_[0]->mdev.uuid(), f);
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
