// The parallel state-change engine moves 1..8 devices through the switchover phases with a barrier the module's event timestamps confirm.
#include "fresh.hpp"

#include <algorithm>
#include <chrono>
#include <map>

#include "vfiomig/parallel.hpp"

namespace vfiomig::test {
namespace {

using namespace std::chrono_literals;
using control::Event;
using control::EventKind;

constexpr std::size_t kMaxDevices = 8;

/// Up to 8 private full-profile devices, created once for the suite.
class ParallelSwitchover : public ::testing::TestWithParam<std::tuple<std::size_t, ExecMode>> {
protected:
	static void SetUpTestSuite()
	{
		if (!emulated() || !module_loaded() || !profile_offered(Profile::Full))
			return;
		for (std::size_t i = 0; i < kMaxDevices; i++)
			devs_.push_back(Fresh::make(Profile::Full));
	}
	static void TearDownTestSuite() { devs_.clear(); }

	void SetUp() override
	{
		REQUIRE_CONTROL();
		if (!module_loaded())
			GTEST_SKIP() << "vfio_mig_emu is not loaded";
		SKIP_UNLESS_OFFERED(Profile::Full);
		n_ = std::get<0>(GetParam());
		mode_ = std::get<1>(GetParam());
		for (std::size_t i = 0; i < n_; i++) {
			ASSERT_OK(devs_[i]->dev.try_reset());
			ptrs_.push_back(&devs_[i]->dev);
		}
		sub_ = std::make_unique<control::EventSubscription>();
	}
	void TearDown() override
	{
		for (std::size_t i = 0; i < n_ && i < devs_.size(); i++) {
			control::Knobs k;
			k.arc_delays.push_back({control::kAnyState, control::kAnyState, 0});
			try {
				nl()->set_knobs(devs_[i]->dev.label(), k);
				nl()->clear_faults(devs_[i]->dev.label());
			} catch (const Error &) {
			}
			(void)devs_[i]->dev.try_reset();
		}
	}
	/// Arc from->to of device i takes `us` microseconds.
	void delay(std::size_t i, State from, State to, std::uint32_t us)
	{
		control::Knobs k;
		k.arc_delays.push_back({static_cast<std::uint32_t>(from), static_cast<std::uint32_t>(to), us});
		nl()->set_knobs(devs_[i]->dev.label(), k);
	}
	/// Successful STATE events of our devices, arc -> uuid -> timestamp.
	std::map<std::pair<State, State>, std::map<std::string, std::uint64_t>> arcs()
	{
		std::map<std::pair<State, State>, std::map<std::string, std::uint64_t>> out;
		for (const Event &e : sub_->drain(300ms)) {
			if (e.kind != EventKind::State || e.err || !e.from || !e.to)
				continue;
			bool ours = std::any_of(ptrs_.begin(), ptrs_.end(),
						[&](Device *d) { return d->label() == e.uuid; });
			if (ours)
				out[{State(*e.from), State(*e.to)}][e.uuid] = e.timestamp_ns;
		}
		return out;
	}
	/// Every device's `before` arc ended before any device's `after` arc ended.
	void expect_barrier(std::pair<State, State> before, std::pair<State, State> after)
	{
		auto a = arcs();
		ASSERT_EQ(a[before].size(), n_) << "missing " << state_name(before.first) << "->"
						<< state_name(before.second) << " events";
		ASSERT_EQ(a[after].size(), n_) << "missing " << state_name(after.first) << "->"
					       << state_name(after.second) << " events";
		std::uint64_t last_before = 0, first_after = UINT64_MAX;
		for (auto &[u, ts] : a[before])
			last_before = std::max(last_before, ts);
		for (auto &[u, ts] : a[after])
			first_after = std::min(first_after, ts);
		EXPECT_LT(last_before, first_after)
			<< "a device took " << state_name(after.first) << "->" << state_name(after.second) << " "
			<< (last_before - first_after) / 1000 << " us before the last "
			<< state_name(before.second) << " — the phase barrier was not respected";
	}

	static inline std::vector<std::unique_ptr<Fresh>> devs_;
	std::size_t n_ = 0;
	ExecMode mode_ = ExecMode::Parallel;
	std::vector<Device *> ptrs_;
	std::unique_ptr<control::EventSubscription> sub_;
};

TEST_P(ParallelSwitchover, SourceAllPreCopyP2PBeforeAnyStopCopy)
{
	for (std::size_t i = 0; i < n_; i++) {
		ASSERT_OK(emu::scribble(*ptrs_[i], 7 + static_cast<std::uint32_t>(i), 4));
		// Staggered: without a barrier the fast devices would reach
		// STOP_COPY while the slow ones are still quiescing.
		delay(i, State::PreCopy, State::PreCopyP2P, static_cast<std::uint32_t>((n_ - i) * 4000));
	}
	auto setup = change_states(ptrs_, {State::PreCopy}, ExecMode::Sequential);
	ASSERT_TRUE(setup.report.ok) << setup.report.error->describe();
	(void)arcs();

	auto res = change_states(ptrs_, kSourceSwitchover, mode_);
	ASSERT_TRUE(res.report.ok) << res.report.error->describe();
	EXPECT_EQ(res.report.phases_completed, 2u);
	ASSERT_EQ(res.report.phases.size(), 2u);
	for (std::size_t i = 0; i < n_; i++) {
		EXPECT_EQ(state_name(ptrs_[i]->get_state()), "STOP_COPY") << "device " << i;
		EXPECT_GT(res.report.phases[0].device_ms[i], 0.0);
		ASSERT_TRUE(setup.data[i]) << "no saving fd for device " << i;
	}
	expect_barrier({State::PreCopy, State::PreCopyP2P}, {State::PreCopyP2P, State::StopCopy});
	// The first phase lasts at least as long as the slowest device.
	EXPECT_GE(res.report.phases[0].ms, static_cast<double>(n_ * 4) * 0.9);
}

TEST_P(ParallelSwitchover, DestinationAllRunningP2PBeforeAnyRunning)
{
	std::vector<Bytes> streams(n_);
	for (std::size_t i = 0; i < n_; i++) {
		Device &d = *ptrs_[i];
		ASSERT_OK(emu::scribble(d, 30 + static_cast<std::uint32_t>(i), 4));
		auto s = d.set_state(State::StopCopy);
		ASSERT_TRUE(s.has_data());
		PumpOptions po;
		po.capture = &streams[i];
		ASSERT_OK(pump(s.data, nullptr, po));
		d.set_state(State::Stop);
		auto r = d.set_state(State::Resuming);
		ASSERT_TRUE(r.has_data());
		ASSERT_OK(write_all(r.data, streams[i]));
		// RESUMING -> RUNNING_P2P is RESUMING -> STOP -> RUNNING_P2P.
		delay(i, State::Resuming, State::Stop, static_cast<std::uint32_t>((n_ - i) * 4000));
	}
	(void)arcs();
	auto res = change_states(ptrs_, kDestinationSwitchover, mode_);
	ASSERT_TRUE(res.report.ok) << res.report.error->describe();
	for (std::size_t i = 0; i < n_; i++)
		EXPECT_EQ(state_name(ptrs_[i]->get_state()), "RUNNING") << "device " << i;
	expect_barrier({State::Stop, State::RunningP2P}, {State::RunningP2P, State::Running});
}

TEST_P(ParallelSwitchover, FailedArcIsReportedAndNobodyEntersTheNextPhase)
{
	const std::size_t bad = n_ / 2;
	control::Fault f;
	f.site = control::Site::SetState;
	f.from = static_cast<std::uint32_t>(State::PreCopy);
	f.to = static_cast<std::uint32_t>(State::PreCopyP2P);
	f.effect = control::Effect::Fail;
	f.err = EIO;
	nl()->add_fault(ptrs_[bad]->label(), f);
	auto setup = change_states(ptrs_, {State::PreCopy}, ExecMode::Sequential);
	ASSERT_TRUE(setup.report.ok) << setup.report.error->describe();

	auto res = change_states(ptrs_, kSourceSwitchover, mode_);
	ASSERT_FALSE(res.report.ok);
	ASSERT_TRUE(res.report.error);
	const PhaseError &e = *res.report.error;
	EXPECT_EQ(e.device, bad);
	EXPECT_EQ(e.label, ptrs_[bad]->label());
	EXPECT_EQ(e.err, EIO) << e.describe();
	ASSERT_TRUE(e.from && e.to) << e.describe();
	EXPECT_EQ(state_name(*e.from), "PRE_COPY");
	EXPECT_EQ(state_name(*e.to), "PRE_COPY_P2P");
	ASSERT_TRUE(e.state_after);
	EXPECT_EQ(state_name(*e.state_after), "PRE_COPY") << "FAIL keeps the arc's from state";
	EXPECT_EQ(res.report.errors.size(), 1u);
	EXPECT_EQ(res.report.phases_completed, 0u);
	// The defined state: everyone else finished the failed phase, nobody
	// started STOP_COPY.
	for (std::size_t i = 0; i < n_; i++)
		EXPECT_EQ(state_name(ptrs_[i]->get_state()), i == bad ? "PRE_COPY" : "PRE_COPY_P2P") << "device " << i;
	EXPECT_NE(e.describe().find("PRE_COPY->PRE_COPY_P2P"), std::string::npos) << e.describe();
}

std::string param_name(const ::testing::TestParamInfo<std::tuple<std::size_t, ExecMode>> &info)
{
	return std::to_string(std::get<0>(info.param)) + "devices_" + exec_mode_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Devices, ParallelSwitchover,
			 ::testing::Combine(::testing::Values(std::size_t{1}, std::size_t{2}, std::size_t{3},
							      std::size_t{4}, std::size_t{5}, std::size_t{6},
							      std::size_t{7}, std::size_t{8}),
					    ::testing::Values(ExecMode::Parallel, ExecMode::Sequential)),
			 param_name);

} // namespace
} // namespace vfiomig::test
