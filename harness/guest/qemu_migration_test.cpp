// QEMU as the consumer: real QEMUs (10.0 without PRECOPY_INFOv2, 11.1 with
// it) live-migrate VMs carrying vfio_mig_emu devices; the migration
// completes, the destination runs, the device state arrives byte for byte
// and every arc QEMU drove is one the uAPI allows.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "common.hpp"
#include "fresh.hpp"
#include "vfiomig/migrator.hpp"
#include "vfiomig/qemu_lane.hpp"
#include "vfiomig/state.hpp"

namespace vfiomig::test {
namespace {

using namespace std::chrono_literals;
using qemu::QemuLane;

/// One migration scenario: the devices in the VM and what they do.
struct Scenario {
	std::string name;
	std::vector<Profile> profiles;
	std::uint32_t dirty_rate = 0;	  ///< source knob, pages/s
	std::uint32_t reconfig = 0;	  ///< resources added during precopy
	std::uint64_t mem_size = 0;	  ///< MEM_SIZE knob, 0: the default
};

struct LaneParam {
	std::string build; ///< label, "" when there is no QEMU
	Scenario scenario;
};

// Readable parameters in reports (not a byte dump).
void PrintTo(const LaneParam &p, std::ostream *os)
{
	*os << "QEMU " << (p.build.empty() ? "none" : p.build) << ", " << p.scenario.name;
}

std::vector<LaneParam> lane_params(const std::vector<Scenario> &scenarios)
{
	std::vector<LaneParam> out;
	for (const auto &b : qemu::lane_builds().found)
		for (const auto &s : scenarios)
			out.push_back({b.label, s});
	if (out.empty())
		out.push_back({"", scenarios.front()});
	return out;
}

std::string param_name(const ::testing::TestParamInfo<LaneParam> &info)
{
	std::string b = info.param.build.empty() ? "no_qemu" : info.param.build;
	std::replace(b.begin(), b.end(), '.', '_');
	return b + "_" + info.param.scenario.name;
}

/// DEV_GET of a device.
/// DEV_GET with the digest (the suite runs with CAP_NET_ADMIN).
control::DeviceInfo device_info(const std::string &uuid)
{
	control::DeviceInfo i = nl()->device(uuid, control::DeviceQuery{.digest = true});
	if (!i.digest)
		throw Error(ENODATA, "DEV_GET of " + uuid + " returned no digest");
	return i;
}

/// Collects the module's events for a set of devices while a lane runs.
class EventLog {
public:
	std::vector<control::Event> take(const std::vector<std::string> &uuids)
	{
		std::vector<control::Event> out;
		for (;;) {
			auto some = sub_.drain(std::chrono::milliseconds(300));
			if (some.empty())
				break;
			for (auto &e : some)
				if (std::find(uuids.begin(), uuids.end(), e.uuid) != uuids.end())
					out.push_back(std::move(e));
		}
		return out;
	}

private:
	control::EventSubscription sub_;
};

/// Every STATE event of `uuid` is one arc of the FSM for `flags`: one step
/// the kernel's path algorithm would take on its own (no combination
/// transition reaches a driver as one step), or a failed step into ERROR.
::testing::AssertionResult ArcsAllowed(const std::vector<control::Event> &events, const std::string &uuid,
				       std::uint64_t flags)
{
	std::string bad;
	int n = 0;
	for (const auto &e : events) {
		if (e.kind != control::EventKind::State || e.uuid != uuid || !e.from || !e.to)
			continue;
		n++;
		auto from = static_cast<State>(*e.from), to = static_cast<State>(*e.to);
		if (e.err)
			continue; // a failed step: judged by the fault tests
		if (!is_valid_state(from, flags) || !is_valid_state(to, flags) || from == to ||
		    next_state(from, *e.to, flags) != to)
			bad += fmt::format(" {}->{}", state_name(from), state_name(to));
	}
	if (!bad.empty())
		return ::testing::AssertionFailure() << "device " << uuid << " took arcs the uAPI does not allow:" << bad;
	if (n == 0)
		return ::testing::AssertionFailure() << "device " << uuid << ": no state event at all";
	return ::testing::AssertionSuccess();
}

class QemuMigration : public ::testing::TestWithParam<LaneParam> {
protected:
	void SetUp() override
	{
		REQUIRE_CONTROL();
		if (GetParam().build.empty())
			GTEST_SKIP() << qemu::lane_missing_reason();
		build_ = qemu::lane_build(GetParam().build);
		ASSERT_NE(build_, nullptr);
	}
	const qemu::Build *build_ = nullptr;
};

/// Devices in one VM: one of each profile QEMU can migrate; one, two and
/// four devices; idle, dirtying, reconfiguring during precopy.
const std::vector<Scenario> kLiveScenarios = {
	{"one_full_idle", {Profile::Full}},
	// Every MEM_SIZE the module accepts must realize in QEMU: 12 KiB is
	// a BAR2 whose region must still be the 16 KiB BAR sizing reports.
	{"one_full_12k_memory", {Profile::Full}, 3000, 0, 12288},
	{"one_stopcopy_idle", {Profile::StopCopy}},
	{"one_p2p_dirtying", {Profile::P2P}, 3000},
	{"one_precopy_dirtying", {Profile::PreCopy}, 3000},
	{"two_full_dirtying", {Profile::Full, Profile::Full}, 3000},
	// QEMU migrates several devices only when all of them have P2P.
	{"four_reconfiguring", {Profile::Full, Profile::P2P, Profile::Full, Profile::P2P}, 2000, 4},
};

class QemuLiveMigration : public QemuMigration {};

TEST_P(QemuLiveMigration, CompletesWithEqualDigestsAndAllowedArcs)
{
	const Scenario &sc = GetParam().scenario;
	qemu::LaneOptions opt;
	opt.profiles = sc.profiles;
	opt.src_knobs.dirty_rate = sc.dirty_rate;
	if (sc.mem_size) {
		opt.src_knobs.mem_size = sc.mem_size;
		opt.dst_knobs.mem_size = sc.mem_size;
	}
	EventLog events;
	QemuLane lane(*nl(), *build_, param_name({GetParam(), 0}), opt);
	SCOPED_TRACE(lane.describe() + "logs in " + lane.dir());

	if (sc.reconfig) {
		// Hold precopy open so that the reconfiguration lands in it.
		lane.set_parameters({{"downtime-limit", 1}, {"max-bandwidth", 262144}});
	}
	lane.start_migration();
	if (sc.reconfig) {
		const std::string &busy = lane.pairs()[0].src.uuid();
		ASSERT_TRUE(QemuLane::wait_for(
			[&] {
				auto s = static_cast<State>(device_info(busy).state);
				return s == State::PreCopy || s == State::StopCopy;
			},
			30s))
			<< "the source device never entered PRE_COPY";
		ASSERT_EQ(static_cast<State>(device_info(busy).state), State::PreCopy)
			<< "precopy was over before the reconfiguration";
		nl()->workload(busy, control::Workload::Reconfig, sc.reconfig);
		std::this_thread::sleep_for(500ms);
		lane.set_parameters({{"downtime-limit", 300}, {"max-bandwidth", 1LL << 30}});
	}
	// QEMU 11.1 counts device state in its expected downtime (the
	// pending-size series): a device without PRE_COPY whose memory is all
	// dirty then needs a higher downtime-limit, as a management layer
	// would set it.
	auto info = lane.wait_final(120s, /*converge=*/true);
	ASSERT_EQ(info.value("status", ""), "completed") << info.dump();
	if (lane.raised_limit_ms())
		RecordProperty("raised_downtime_limit_ms", std::to_string(*lane.raised_limit_ms()));
	auto dst_status = lane.dst().qmp().execute("query-status");
	EXPECT_EQ(dst_status.value("status", ""), "running") << dst_status.dump();

	std::vector<std::string> uuids;
	for (auto &p : lane.pairs()) {
		uuids.push_back(p.src.uuid());
		uuids.push_back(p.dst.uuid());
		// The source device stays in STOP after STOP_COPY: its digest
		// now is the one it had when its final state was read.
		auto s = device_info(p.src.uuid()), d = device_info(p.dst.uuid());
		EXPECT_EQ(static_cast<State>(s.state), State::Stop) << "source " << p.src.uuid();
		EXPECT_EQ(static_cast<State>(d.state), State::Running) << "destination " << p.dst.uuid();
		EXPECT_EQ(*s.digest, *d.digest) << "profile " << profile_name(p.src.profile()) << ": source "
					      << p.src.uuid() << " digest " << fmt::format("{:#x}", *s.digest)
					      << ", destination " << fmt::format("{:#x}", *d.digest);
		if (sc.reconfig && &p == &lane.pairs()[0]) {
			EXPECT_EQ(d.nr_resources, s.nr_resources) << "the reconfiguration did not arrive";
		}
	}
	auto evs = events.take(uuids);
	for (auto &p : lane.pairs()) {
		std::uint64_t flags = profile_mig_flags(p.src.profile());
		EXPECT_TRUE(ArcsAllowed(evs, p.src.uuid(), flags));
		EXPECT_TRUE(ArcsAllowed(evs, p.dst.uuid(), flags));
	}
}

INSTANTIATE_TEST_SUITE_P(Qemu, QemuLiveMigration, ::testing::ValuesIn(lane_params(kLiveScenarios)), param_name);

/// QEMU refuses to realize a second migratable device when one of them
/// lacks P2P ("Multiple VFIO devices migration is supported only if all of
/// them support P2P migration"): the flags our precopy profile reports
/// reach QEMU's check, and the refusal is an error naming the device.
class QemuMultiDevice : public QemuMigration {};

TEST_P(QemuMultiDevice, DeviceWithoutP2PBesideAnotherIsRefusedAtRealize)
{
	qemu::LaneOptions opt;
	opt.profiles = {Profile::Full, Profile::PreCopy};
	try {
		QemuLane lane(*nl(), *build_, param_name({GetParam(), 0}), opt);
		FAIL() << "QEMU " << build_->label << " started a VM with a device lacking P2P beside another";
	} catch (const std::runtime_error &e) {
		std::string what = e.what();
		EXPECT_NE(what.find("exited 1 at start-up"), std::string::npos) << what;
		EXPECT_NE(what.find("P2P"), std::string::npos) << what;
	}
}

INSTANTIATE_TEST_SUITE_P(Qemu, QemuMultiDevice, ::testing::ValuesIn(lane_params({{"full_and_precopy", {}}})),
			 param_name);

/// REINIT through QEMU's own code. A reconfiguration of the source device
/// during precopy (8 new resources: new initial bytes) must make 11.1
/// report REINIT once (trace vfio_query_precopy_size ... reinit 1), ask the
/// destination for a new switchover approval, and get it only after the
/// destination loaded the new initial data; the legacy consumer (10.0)
/// sees no REINIT, approves once, and the new data travels as dirty data.
/// Both REINIT policies of the device (FOLD, DISCARD) are run.
struct ReinitParam {
	std::string build;
	control::ReinitPolicy policy;
	/// 11.1 with machine pc-q35-11.0: its compat property
	/// switchover-ack-legacy (one approval for all devices, once).
	bool legacy_ack = false;
};

void PrintTo(const ReinitParam &p, std::ostream *os)
{
	*os << "QEMU " << (p.build.empty() ? "none" : p.build) << ", REINIT policy "
	    << control::reinit_policy_name(p.policy) << (p.legacy_ack ? ", legacy switchover-ack" : "");
}

class QemuReinit : public ::testing::TestWithParam<ReinitParam> {};

std::vector<ReinitParam> reinit_params()
{
	std::vector<ReinitParam> out;
	for (const auto &b : qemu::lane_builds().found)
	{
		for (auto p : {control::ReinitPolicy::Fold, control::ReinitPolicy::Discard})
			out.push_back({b.label, p});
		if (b.has_precopy_info_v2())
			out.push_back({b.label, control::ReinitPolicy::Fold, true});
	}
	if (out.empty())
		out.push_back({"", control::ReinitPolicy::Fold});
	return out;
}

std::string reinit_name(const ::testing::TestParamInfo<ReinitParam> &info)
{
	std::string b = info.param.build.empty() ? "no_qemu" : info.param.build;
	std::replace(b.begin(), b.end(), '.', '_');
	return b + "_" + control::reinit_policy_name(info.param.policy) + (info.param.legacy_ack ? "_legacy_ack" : "");
}

std::size_t count_with(const std::vector<qemu::TraceLine> &lines, std::string_view device, std::string_view text)
{
	return std::count_if(lines.begin(), lines.end(), [&](const qemu::TraceLine &t) {
		return t.args.find(device) != std::string::npos && t.args.find(text) != std::string::npos;
	});
}

TEST_P(QemuReinit, ReconfigurationDuringPrecopyIsReinitOnceAndApprovedAfterLoad)
{
	REQUIRE_CONTROL();
	if (GetParam().build.empty())
		GTEST_SKIP() << qemu::lane_missing_reason();
	const qemu::Build &build = *qemu::lane_build(GetParam().build);
	constexpr std::uint32_t kNewResources = 8;

	qemu::LaneOptions opt;
	opt.profiles = {Profile::Full};
	opt.src_knobs.dirty_rate = 5000;
	opt.src_knobs.reinit_policy = GetParam().policy;
	// Loading a resource costs the destination 40 ms: an approval given
	// before the new initial data is loaded would be seen doing so.
	opt.dst_knobs.load_us_per_resource = 40000;
	opt.trace.push_back("vfio_load_state_device_data");
	const bool legacy_ack = GetParam().legacy_ack;
	if (legacy_ack)
		opt.machine = "pc-q35-11.0";
	EventLog events;
	QemuLane lane(*nl(), build, "reinit_" + reinit_name({GetParam(), 0}), opt);
	SCOPED_TRACE(lane.describe() + "logs in " + lane.dir());
	const std::string src = lane.pairs()[0].src.uuid(), dst = lane.pairs()[0].dst.uuid();

	lane.set_parameters({{"downtime-limit", 1}, {"max-bandwidth", 262144}});
	lane.start_migration();
	// The legacy ack (10.0, or 11.1 on a machine up to 11.0) traces
	// loadvm_approve_switchover_legacy in 11.1.
	auto approvals = [&] {
		return lane.dst_trace("loadvm_approve_switchover").size() +
		       lane.dst_trace("loadvm_approve_switchover_legacy").size();
	};
	ASSERT_TRUE(QemuLane::wait_for([&] { return approvals() >= 1; }, 60s))
		<< "the destination never approved switchover for the initial data";
	ASSERT_EQ(static_cast<State>(device_info(src).state), State::PreCopy);

	nl()->workload(src, control::Workload::Reconfig, kNewResources);
	const std::uint32_t src_resources = device_info(src).nr_resources;

	const bool v2 = build.has_precopy_info_v2();
	if (v2 && !legacy_ack) {
		// The moment the second approval shows up, the destination must
		// already hold every new resource.
		ASSERT_TRUE(QemuLane::wait_for([&] { return approvals() >= 2; }, 60s))
			<< "QEMU " << build.label << " did not ask for and get a second approval after REINIT";
		EXPECT_EQ(device_info(dst).nr_resources, src_resources)
			<< "the destination approved switchover before it loaded the new initial data";
	} else {
		// The legacy consumer: new data travels as dirty data; wait until
		// the destination has it.
		ASSERT_TRUE(QemuLane::wait_for([&] { return device_info(dst).nr_resources == src_resources; }, 60s))
			<< "the new resources never reached the destination during precopy";
	}

	lane.set_parameters({{"downtime-limit", 300}, {"max-bandwidth", 1LL << 30}});
	auto info = lane.wait_final(120s, /*converge=*/true);
	ASSERT_EQ(info.value("status", ""), "completed") << info.dump();

	auto precopy = lane.src_trace("vfio_query_precopy_size");
	std::size_t reinits = count_with(precopy, src, "reinit 1");
	if (v2 && !legacy_ack) {
		EXPECT_EQ(reinits, 1u) << "one reconfiguration must be reported as REINIT exactly once";
		EXPECT_EQ(approvals(), 2u) << "initial approval plus one after the REINIT";
	} else if (v2) {
		// Known difference from our Migrator (which waits for the new
		// initial bytes): 11.1 in legacy ack mode sees the REINIT and
		// does not ask for, or wait on, a second approval.
		EXPECT_EQ(reinits, 1u) << "the device opted in: one reconfiguration, one REINIT";
		EXPECT_EQ(approvals(), 1u) << "the legacy switchover-ack is given once";
	} else {
		EXPECT_EQ(approvals(), 1u) << "the legacy consumer approves switchover once";
	}
	auto s = device_info(src), d = device_info(dst);
	EXPECT_EQ(d.nr_resources, s.nr_resources);
	EXPECT_EQ(*s.digest, *d.digest) << fmt::format("source {:#x}, destination {:#x}", *s.digest, *d.digest);
	auto evs = events.take({src, dst});
	EXPECT_TRUE(ArcsAllowed(evs, src, profile_mig_flags(Profile::Full)));
	EXPECT_TRUE(ArcsAllowed(evs, dst, profile_mig_flags(Profile::Full)));
	RecordProperty("reinit_reported", std::to_string(reinits));
	RecordProperty("approvals", std::to_string(approvals()));
}

INSTANTIATE_TEST_SUITE_P(Qemu, QemuReinit, ::testing::ValuesIn(reinit_params()), reinit_name);

/// The final precopy query, QEMU against our Migrator's default on the
/// same scenario (one device: full, PRE_COPY and P2P; or precopy, without
/// P2P). From the
/// source QEMU's trace, in order: the queries (vfio_query_precopy_size)
/// after the VM was stopped for switchover (runstate_set to
/// finish-migrate) and before PRE_COPY -> PRE_COPY_P2P, and those in
/// PRE_COPY_P2P (before STOP_COPY). QEMU 11.1 in per-device ack mode runs
/// one final check before the arc for a device with P2P; without P2P, in
/// legacy ack mode (machine pc-q35-11.0) and in QEMU 10.0 none. The Migrator with the matching ack
/// mode and default options must query as often after its switchover
/// decision, and never in PRE_COPY_P2P.
struct FinalQueryParam {
	std::string build;
	bool legacy_ack = false; ///< 11.1 on machine pc-q35-11.0
	Profile profile = Profile::Full;
};

void PrintTo(const FinalQueryParam &p, std::ostream *os)
{
	*os << "QEMU " << (p.build.empty() ? "none" : p.build) << ", profile " << profile_name(p.profile)
	    << (p.legacy_ack ? ", legacy switchover-ack" : "");
}

class QemuFinalQuery : public ::testing::TestWithParam<FinalQueryParam> {};

std::vector<FinalQueryParam> final_query_params()
{
	std::vector<FinalQueryParam> out;
	for (const auto &b : qemu::lane_builds().found) {
		out.push_back({b.label});
		if (b.has_precopy_info_v2()) {
			out.push_back({b.label, true});
			// PRE_COPY without P2P: QEMU registers no prepare handler.
			out.push_back({b.label, false, Profile::PreCopy});
		}
	}
	if (out.empty())
		out.push_back({""});
	return out;
}

std::string final_query_name(const ::testing::TestParamInfo<FinalQueryParam> &info)
{
	std::string b = info.param.build.empty() ? "no_qemu" : info.param.build;
	std::replace(b.begin(), b.end(), '.', '_');
	return b + "_" + profile_name(info.param.profile) + (info.param.legacy_ack ? "_legacy_ack" : "");
}

/// Queries of the source QEMU's trace: between the stop for switchover and
/// the first arc after it (PRE_COPY -> PRE_COPY_P2P, or PRE_COPY ->
/// STOP_COPY without P2P), and in PRE_COPY_P2P.
struct QemuQueries {
	int stopped_before_arc = -1, in_p2p = -1;
	std::string excerpt;
};

QemuQueries qemu_queries(const std::vector<qemu::TraceLine> &lines)
{
	QemuQueries q;
	enum { Running, Stopped, P2P, Done } at = Running;
	int a = 0, b = 0;
	for (const auto &t : lines) {
		bool set = t.event == "vfio_migration_set_state";
		if (at == Running && t.event == "runstate_set" && t.args.find("(finish-migrate)") != std::string::npos)
			at = Stopped;
		else if (at == Stopped && set && t.args.find("new state PRE_COPY_P2P") != std::string::npos)
			at = P2P;
		else if ((at == Stopped || at == P2P) && set && t.args.find("new state STOP_COPY") != std::string::npos)
			at = Done;
		else if (t.event == "vfio_query_precopy_size" && at == Stopped)
			a++;
		else if (t.event == "vfio_query_precopy_size" && at == P2P)
			b++;
		if (at != Running && q.excerpt.size() < 4000)
			q.excerpt += t.event + " " + t.args + "\n";
		if (at == Done)
			break;
	}
	if (at == Done) {
		q.stopped_before_arc = a;
		q.in_p2p = b;
	}
	return q;
}

TEST_P(QemuFinalQuery, ComesWhereTheMigratorDefaultPutsIt)
{
	REQUIRE_CONTROL();
	if (GetParam().build.empty())
		GTEST_SKIP() << qemu::lane_missing_reason();
	const qemu::Build &build = *qemu::lane_build(GetParam().build);
	const bool per_device = build.has_precopy_info_v2() && !GetParam().legacy_ack;
	const Profile profile = GetParam().profile;
	const bool p2p = (profile_mig_flags(profile) & kMigP2P) != 0;

	qemu::LaneOptions opt;
	opt.profiles = {profile};
	opt.trace.push_back("runstate_set");
	opt.trace.push_back("vfio_vmstate_change_prepare");
	if (GetParam().legacy_ack)
		opt.machine = "pc-q35-11.0";
	int qemu_final = -1;
	{
		QemuLane lane(*nl(), build, "final_query_" + final_query_name({GetParam(), 0}), opt);
		SCOPED_TRACE(lane.describe() + "logs in " + lane.dir());
		lane.start_migration();
		auto info = lane.wait_final(120s, /*converge=*/true);
		ASSERT_EQ(info.value("status", ""), "completed") << info.dump();
		QemuQueries q = qemu_queries(lane.src_trace(""));
		ASSERT_GE(q.stopped_before_arc, 0) << "no stop and STOP_COPY in the source trace:\n" << q.excerpt;
		EXPECT_EQ(q.in_p2p, 0) << "QEMU " << build.label << " queried in PRE_COPY_P2P:\n" << q.excerpt;
		EXPECT_EQ(q.stopped_before_arc, per_device && p2p ? 1 : 0)
			<< "QEMU " << build.label << (per_device ? " (per-device ack)" : " (legacy ack)")
			<< (p2p ? ", P2P" : ", no P2P") << ": final queries between the stop and the first arc:\n"
			<< q.excerpt;
		qemu_final = q.stopped_before_arc;
		RecordProperty("qemu_final_queries", std::to_string(q.stopped_before_arc));
	}

	// Our Migrator, default options, the same ack mode and profile.
	auto src = Fresh::make(profile), dst = Fresh::make(profile);
	MigratorOptions mo;
	mo.ack = per_device ? AckMode::PerDevice : AckMode::Legacy;
	mo.precopy_v2 = build.has_precopy_info_v2();
	const std::string uuid = src->mdev->uuid();
	std::uint64_t at_decision = 0;
	mo.after_decision = [&] { at_decision = nl()->device(uuid).counters.precopy_queries; };
	MigrationReport r = Migrator({{&src->dev, &dst->dev}}, mo).run();
	ASSERT_TRUE(r.ok) << r.error;
	const auto ours = static_cast<int>(nl()->device(uuid).counters.precopy_queries - at_decision);
	EXPECT_EQ(ours, qemu_final) << "our Migrator's final queries after the decision against QEMU "
				    << build.label << "'s";
	EXPECT_EQ(r.devices[0].final_query, qemu_final == 1);
}

INSTANTIATE_TEST_SUITE_P(Qemu, QemuFinalQuery, ::testing::ValuesIn(final_query_params()), final_query_name);

/// QEMU 11.1 opts in to PRECOPY_INFOv2 when it sets the device up, on the
/// destination too (trace vfio_migration_init ... precopy_info_v2_used 1
/// in both QEMUs), as our Migrator does by default (DeviceReport::dst_v2);
/// QEMU 10.0 on neither side.
class QemuOptIn : public QemuMigration {};

TEST_P(QemuOptIn, BothSidesOptInAtSetUpAsTheMigratorDoes)
{
	qemu::LaneOptions opt;
	opt.profiles = {Profile::Full};
	QemuLane lane(*nl(), *build_, "opt_in_" + param_name({GetParam(), 0}), opt);
	SCOPED_TRACE(lane.describe() + "logs in " + lane.dir());
	auto used = [](const std::vector<qemu::TraceLine> &lines) {
		return std::count_if(lines.begin(), lines.end(), [](const qemu::TraceLine &t) {
			return t.args.find("precopy_info_v2_used 1") != std::string::npos;
		});
	};
	const bool v2 = build_->has_precopy_info_v2();
	// Before any migration: the opt-in belongs to set-up.
	EXPECT_EQ(used(lane.src_trace("vfio_migration_init")), v2 ? 1 : 0) << "source QEMU " << build_->label;
	EXPECT_EQ(used(lane.dst_trace("vfio_migration_init")), v2 ? 1 : 0) << "destination QEMU " << build_->label;

	auto src = Fresh::make(Profile::Full), dst = Fresh::make(Profile::Full);
	MigratorOptions mo;
	mo.precopy_v2 = v2;
	MigrationReport r = Migrator({{&src->dev, &dst->dev}}, mo).run();
	ASSERT_TRUE(r.ok) << r.error;
	EXPECT_EQ(r.devices[0].v2, v2);
	EXPECT_EQ(r.devices[0].dst_v2, v2) << "our Migrator opts the destination in as QEMU " << build_->label
					   << " does";
}

INSTANTIATE_TEST_SUITE_P(Qemu, QemuOptIn, ::testing::ValuesIn(lane_params({{"one_full", {Profile::Full}}})),
			 param_name);

} // namespace
} // namespace vfiomig::test
