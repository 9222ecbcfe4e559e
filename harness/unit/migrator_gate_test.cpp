// SwitchoverGate and the Migrator's pure choices: switchover-ack (legacy once, per device re-usable), readiness, late ACK failure (QEMU's count), the final query (which devices, which phase), garbage sizes.
#include <gtest/gtest.h>

#include <cmath>

#include "vfiomig/migrator.hpp"

namespace vfiomig {
namespace {

constexpr std::uint32_t kReinit = VFIO_PRECOPY_INFO_REINIT;

PrecopyObservation v1(std::uint64_t initial, std::uint64_t dirty = 0, std::uint32_t flags = 0)
{
	return {flags, initial, dirty, false};
}
PrecopyObservation v2(std::uint64_t initial, std::uint64_t dirty = 0, std::uint32_t flags = 0)
{
	return {flags, initial, dirty, true};
}

TEST(SwitchoverGate, NotReadyBeforeEveryDeviceWasQueried)
{
	SwitchoverGate g(2, AckMode::PerDevice);
	g.observe(0, v1(0));
	EXPECT_FALSE(g.ready());
	EXPECT_NE(g.why_not_ready().find("device 1: no precopy query"), std::string::npos) << g.why_not_ready();
	g.observe(1, v1(0));
	EXPECT_TRUE(g.ready()) << g.why_not_ready();
}

TEST(SwitchoverGate, PerDeviceAckComesOnceItsInitialDataIsLoaded)
{
	SwitchoverGate g(2, AckMode::PerDevice);
	g.observe(0, v1(100, 50));
	g.observe(1, v1(10));
	g.loaded(0, 60);
	EXPECT_FALSE(g.acked(0));
	EXPECT_EQ(g.initial_left(0), 40u);
	g.loaded(1, 10);
	EXPECT_TRUE(g.acked(1));
	EXPECT_EQ(g.acks_sent(), 1u);
	g.loaded(0, 90); // the rest of the initial data, then dirty data
	EXPECT_TRUE(g.acked(0));
	EXPECT_EQ(g.acks_sent(), 2u);
	EXPECT_TRUE(g.ready());
}

TEST(SwitchoverGate, LegacyAcksOnceForAllDevices)
{
	SwitchoverGate g(3, AckMode::Legacy);
	for (std::size_t i = 0; i < 3; i++)
		g.observe(i, v1(10));
	g.loaded(0, 10);
	g.loaded(1, 10);
	EXPECT_FALSE(g.acked(0)) << "legacy ACK before every device's initial data was loaded";
	EXPECT_EQ(g.acks_sent(), 0u);
	g.drained(2);
	EXPECT_TRUE(g.acked(0));
	EXPECT_EQ(g.acks_sent(), 1u);
	EXPECT_TRUE(g.ready());
}

// QEMU 11.1's legacy mode (the default): one ACK, and a REINIT after it
// neither asks for another nor holds the switchover back.
TEST(SwitchoverGate, LegacyNeverAcksTwiceAndDoesNotWaitForReinitData)
{
	SwitchoverGate g(1, AckMode::Legacy);
	g.observe(0, v2(10));
	EXPECT_FALSE(g.ready()) << "the initial data is not loaded yet";
	g.loaded(0, 10);
	ASSERT_EQ(g.acks_sent(), 1u);
	g.observe(0, v2(30, 0, kReinit)); // new initial data after the ACK
	EXPECT_TRUE(g.ready()) << "QEMU 11.1 does not wait for it: " << g.why_not_ready();
	EXPECT_EQ(g.ack_requests(0), 1u) << "legacy ACK is not re-usable";
	g.loaded(0, 30);
	EXPECT_EQ(g.acks_sent(), 1u);
}

// The named option: the stricter behaviour, waiting for the new data.
TEST(SwitchoverGate, LegacyWaitsForReinitDataWhenAsked)
{
	SwitchoverGate g(1, AckMode::Legacy, /*legacy_waits_for_reinit=*/true);
	g.observe(0, v2(10));
	g.loaded(0, 10);
	ASSERT_EQ(g.acks_sent(), 1u);
	g.observe(0, v2(30, 0, kReinit));
	EXPECT_FALSE(g.ready()) << "initial data pending";
	EXPECT_EQ(g.ack_requests(0), 1u) << "legacy ACK is not re-usable";
	g.loaded(0, 30);
	EXPECT_EQ(g.acks_sent(), 1u);
	EXPECT_TRUE(g.ready());
}

TEST(SwitchoverGate, ReinitAfterAckRequestsANewAck)
{
	SwitchoverGate g(2, AckMode::PerDevice);
	g.observe(0, v2(10));
	g.observe(1, v2(10));
	g.loaded(0, 10);
	g.loaded(1, 10);
	ASSERT_TRUE(g.ready());
	g.observe(0, v2(500, 0, kReinit));
	EXPECT_FALSE(g.acked(0));
	EXPECT_TRUE(g.acked(1)) << "a REINIT of one device must not revoke the others' ACKs";
	EXPECT_EQ(g.ack_requests(0), 2u);
	EXPECT_EQ(g.reinits(0), 1u);
	EXPECT_FALSE(g.ready());
	EXPECT_NE(g.why_not_ready().find("500 initial bytes"), std::string::npos) << g.why_not_ready();
	g.loaded(0, 499);
	EXPECT_FALSE(g.ready());
	g.loaded(0, 1);
	EXPECT_TRUE(g.ready());
	EXPECT_EQ(g.acks_sent(), 3u);
	EXPECT_EQ(g.acks(0), 2u);
}

TEST(SwitchoverGate, ReinitMayShrinkInitialBytes)
{
	SwitchoverGate g(1, AckMode::PerDevice);
	g.observe(0, v2(1000));
	g.observe(0, v2(8, 0, kReinit)); // "any new value", smaller included
	EXPECT_EQ(g.initial_left(0), 8u);
	EXPECT_EQ(g.initial_growth(0), 0u);
}

TEST(SwitchoverGate, ReinitWithoutOptInIsIgnored)
{
	SwitchoverGate g(1, AckMode::PerDevice);
	g.observe(0, v1(10));
	g.loaded(0, 10);
	ASSERT_TRUE(g.ready());
	g.observe(0, v1(0, 10, kReinit)); // v1: flags are reserved, echoed
	EXPECT_TRUE(g.ready()) << "a v1 device's flags were read as REINIT";
	EXPECT_EQ(g.reinits(0), 0u);
}

TEST(SwitchoverGate, V1InitialBytesNeverGrow)
{
	SwitchoverGate g(1, AckMode::PerDevice);
	g.observe(0, v1(100));
	g.loaded(0, 100);
	ASSERT_TRUE(g.ready());
	g.observe(0, v1(50));
	EXPECT_TRUE(g.ready()) << "a v1 initial_bytes increase revoked readiness";
	EXPECT_EQ(g.initial_growth(0), 1u);
}

TEST(SwitchoverGate, AckRequestedAfterTheDecisionFails)
{
	SwitchoverGate g(2, AckMode::PerDevice);
	g.set_label(1, "busy");
	g.observe(0, v2(1));
	g.observe(1, v2(1));
	g.drained(0);
	g.drained(1);
	ASSERT_TRUE(g.ready());
	g.decide();
	g.observe(0, v2(0)); // final query, nothing new
	EXPECT_FALSE(g.failure());
	g.observe(1, v2(64, 0, kReinit)); // final query catches a reconfiguration
	ASSERT_TRUE(g.failure());
	// QEMU 11.1's wording counts the devices; the names are the detail.
	EXPECT_NE(g.failure()->find("Switchover ACK was requested by 1 devices during switchover"), std::string::npos)
		<< *g.failure();
	EXPECT_NE(g.failure()->find("busy"), std::string::npos) << *g.failure();
	EXPECT_NE(g.failure()->find("after the switchover decision"), std::string::npos) << *g.failure();
	EXPECT_TRUE(g.late_ack_request(1));
	EXPECT_FALSE(g.late_ack_request(0));
	EXPECT_FALSE(g.ready());
	g.drained(1);
	EXPECT_FALSE(g.acked(1)) << "the destination acked after the decision";
}

// QEMU 11.1 counts every device whose final check requested an ACK.
TEST(SwitchoverGate, LateAckFailureCountsEveryRequestingDevice)
{
	SwitchoverGate g(3, AckMode::PerDevice);
	g.set_label(0, "vme0");
	g.set_label(1, "vme1");
	g.set_label(2, "vme2");
	for (std::size_t i = 0; i < 3; i++) {
		g.observe(i, v2(1));
		g.drained(i);
	}
	ASSERT_TRUE(g.ready());
	g.decide();
	g.observe(0, v2(8, 0, kReinit));
	g.observe(1, v2(0));
	g.observe(2, v2(8, 0, kReinit));
	g.observe(2, v2(4, 0, kReinit)); // the same device twice counts once
	ASSERT_TRUE(g.failure());
	EXPECT_EQ(g.late_ack_requests(), 2u);
	EXPECT_NE(g.failure()->find("requested by 2 devices during switchover"), std::string::npos) << *g.failure();
	EXPECT_NE(g.failure()->find("vme0, vme2"), std::string::npos) << *g.failure();
	EXPECT_EQ(g.failure()->find("vme1"), std::string::npos) << *g.failure();
}

// The named option: the earlier message, the first device only.
TEST(SwitchoverGate, LateAckFailureNamesTheFirstDeviceWhenAsked)
{
	SwitchoverGate g(2, AckMode::PerDevice);
	g.set_late_ack_message(SwitchoverGate::LateAckMessage::FirstDevice);
	g.set_label(0, "vme0");
	g.set_label(1, "vme1");
	for (std::size_t i = 0; i < 2; i++) {
		g.observe(i, v2(1));
		g.drained(i);
	}
	g.decide();
	g.observe(0, v2(8, 0, kReinit));
	g.observe(1, v2(8, 0, kReinit));
	ASSERT_TRUE(g.failure());
	EXPECT_EQ(g.late_ack_requests(), 2u);
	EXPECT_EQ(g.failure()->rfind("switchover-ack: vme0 reported VFIO_PRECOPY_INFO_REINIT", 0), 0u) << *g.failure();
	EXPECT_EQ(g.failure()->find("vme1"), std::string::npos) << *g.failure();
	EXPECT_EQ(g.failure()->find("requested by"), std::string::npos) << *g.failure();
}

// QEMU 11.1's final precopy check: per-device ack mode only, devices with
// P2P only (the default).
TEST(MigratorFinalQuery, DefaultFollowsQemuPerDeviceAckAndP2POnly)
{
	MigratorOptions o;
	o.ack = AckMode::PerDevice;
	EXPECT_TRUE(final_query_applies(o, /*precopy=*/true, /*p2p=*/true));
	EXPECT_FALSE(final_query_applies(o, true, false)) << "no P2P: QEMU has no prepare handler to run it from";
	EXPECT_FALSE(final_query_applies(o, false, true)) << "no PRE_COPY: nothing to query";
	o.ack = AckMode::Legacy;
	EXPECT_FALSE(final_query_applies(o, true, true)) << "legacy ack: QEMU runs no final check";
	EXPECT_FALSE(final_query_applies(o, true, false));
	o.ack = AckMode::PerDevice;
	o.final_query = false;
	EXPECT_FALSE(final_query_applies(o, true, true));
}

TEST(MigratorFinalQuery, EveryDeviceOptionKeepsTheEarlierBehaviour)
{
	MigratorOptions o;
	o.final_query_every_device = true;
	for (AckMode m : {AckMode::PerDevice, AckMode::Legacy}) {
		o.ack = m;
		EXPECT_TRUE(final_query_applies(o, true, true)) << ack_mode_name(m);
		EXPECT_TRUE(final_query_applies(o, true, false)) << ack_mode_name(m);
		EXPECT_FALSE(final_query_applies(o, false, true)) << ack_mode_name(m);
	}
}

TEST(MigratorFinalQuery, ComesBeforePreCopyP2PByDefault)
{
	MigratorOptions o;
	std::vector<std::string> want = {"final-query", "quiesce", "stop-copy", "run"};
	EXPECT_EQ(switchover_phases(o), want);
	o.final_query_after_p2p = true;
	want = {"quiesce", "final-query", "stop-copy", "run"};
	EXPECT_EQ(switchover_phases(o), want) << "the named option: after PRE_COPY -> PRE_COPY_P2P";
}

TEST(MigratorOptionsDefaults, FollowQemu111)
{
	MigratorOptions o;
	EXPECT_EQ(o.ack, AckMode::PerDevice);
	EXPECT_TRUE(o.precopy_v2);
	EXPECT_FALSE(o.precopy_v2_per_run_source_only);
	EXPECT_TRUE(o.final_query);
	EXPECT_FALSE(o.final_query_every_device);
	EXPECT_FALSE(o.final_query_after_p2p);
	EXPECT_FALSE(o.late_ack_names_first_device);
	EXPECT_FALSE(o.legacy_ack_waits_for_reinit);
}

TEST(SwitchoverGate, LegacyReinitAfterTheDecisionDoesNotAskForAnAck)
{
	SwitchoverGate g(1, AckMode::Legacy);
	g.observe(0, v2(1));
	g.drained(0);
	g.decide();
	g.observe(0, v2(64, 0, kReinit));
	EXPECT_FALSE(g.failure()) << "legacy switchover-ack is given once, never requested again";
}

TEST(SwitchoverGate, GarbageInitialBytesCannotBlockForever)
{
	SwitchoverGate g(1, AckMode::PerDevice);
	g.observe(0, v1(UINT64_MAX, UINT64_MAX));
	g.loaded(0, 4096);
	EXPECT_FALSE(g.ready());
	g.drained(0); // the stream ran dry: it is the truth
	EXPECT_TRUE(g.ready());
	g.observe(0, v1(UINT64_MAX, UINT64_MAX)); // still garbage: ignored without REINIT
	EXPECT_TRUE(g.ready());
}

TEST(SwitchoverGate, ExemptDevicesNeedNoAck)
{
	SwitchoverGate g(2, AckMode::PerDevice);
	g.exempt(0);
	g.observe(1, v1(0));
	EXPECT_TRUE(g.ready()) << g.why_not_ready();
	EXPECT_EQ(g.acks_sent(), 1u);
	EXPECT_EQ(g.ack_requests(0), 0u);
}

TEST(MigratorSizes, ImplausibleSizesAreRejected)
{
	EXPECT_EQ(plausible_size(4096), 4096u);
	EXPECT_FALSE(plausible_size(UINT64_MAX));
	EXPECT_FALSE(plausible_size(kMaxPlausibleSize + 1));
	EXPECT_DOUBLE_EQ(expected_ms(1000, 1000.0), 1000.0);
	EXPECT_DOUBLE_EQ(expected_ms(0, 0), 0.0);
	EXPECT_TRUE(std::isinf(expected_ms(1, 0)));
}

} // namespace
} // namespace vfiomig
