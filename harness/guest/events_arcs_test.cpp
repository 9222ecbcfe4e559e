// The arcs a SET_STATE takes, as the module reports them in events, are exactly the reference path.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class FsmArcs : public ProfileTest {};

// Events are sent synchronously with the ioctl: all are queued when it returns.
// An overrun (the suite's earlier tests produce many events nobody reads)
// ends a drain early: drain again until nothing is left.
std::vector<control::Event> pending(control::EventSubscription &sub)
{
	std::vector<control::Event> all;
	for (int i = 0; i < 1000; i++) {
		std::uint64_t overruns = sub.overruns();
		auto some = sub.drain(std::chrono::milliseconds(0));
		if (some.empty() && sub.overruns() == overruns)
			break;
		all.insert(all.end(), some.begin(), some.end());
	}
	return all;
}

std::vector<std::pair<State, State>> state_events(control::EventSubscription &sub, const std::string &uuid,
						  bool *errors)
{
	std::vector<std::pair<State, State>> arcs;
	for (const control::Event &e : pending(sub)) {
		if (e.uuid != uuid || e.kind != control::EventKind::State)
			continue;
		if (e.err)
			*errors = true;
		arcs.emplace_back(static_cast<State>(e.from.value_or(99)), static_cast<State>(e.to.value_or(99)));
	}
	return arcs;
}

std::string arcs_to_string(const std::vector<std::pair<State, State>> &arcs)
{
	std::string s;
	for (auto &[a, b] : arcs)
		s += (s.empty() ? "" : ", ") + state_name(a) + "->" + state_name(b);
	return "[" + s + "]";
}

TEST_P(FsmArcs, ArcsTakenAreTheReferencePath)
{
	REQUIRE_CONTROL();
	control::EventSubscription &ctl = *events();
	Device &dev = src();
	Bytes stream = save(dev);
	for (State from : kAllStates) {
		if (!is_valid_state(from, flags()))
			continue;
		for (State to : kAllStates) {
			auto p = path(from, to, flags());
			if (!p)
				continue;
			SCOPED_TRACE(state_name(from) + " -> " + state_name(to));
			ASSERT_OK(dev.try_reset());
			MigrationSession keep;
			if (from != State::Running)
				keep = dev.set_state(from);
			if (from == State::Resuming) {
				ASSERT_OK(write_all(keep.data, stream));
			}
			(void)pending(ctl); // drop the events of the set-up
			bool errors = false;
			ASSERT_OK(dev.try_set_state(to));
			auto arcs = state_events(ctl, dev.label(), &errors);
			std::vector<std::pair<State, State>> want;
			State cur = from;
			for (State s : *p) {
				want.emplace_back(cur, s);
				cur = s;
			}
			EXPECT_FALSE(errors);
			EXPECT_EQ(arcs_to_string(arcs), arcs_to_string(want));
		}
	}
}

TEST_P(FsmArcs, EventSequenceNumbersHaveNoGaps)
{
	REQUIRE_CONTROL();
	control::EventSubscription &ctl = *events();
	Device &dev = src();
	(void)pending(ctl);
	dev.set_state(State::StopCopy);
	dev.set_state(State::Stop);
	ASSERT_OK(dev.try_reset());
	std::vector<std::uint64_t> seqs;
	for (const control::Event &e : pending(ctl))
		if (e.uuid == dev.label())
			seqs.push_back(e.seq);
	ASSERT_GE(seqs.size(), 3u);
	for (std::size_t i = 1; i < seqs.size(); i++)
		EXPECT_EQ(seqs[i], seqs[i - 1] + 1) << "event " << i;
}

VFIOMIG_INSTANTIATE_PROFILES(FsmArcs);

} // namespace
} // namespace vfiomig::test
