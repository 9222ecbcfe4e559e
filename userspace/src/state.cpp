#include "vfiomig/state.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace vfiomig {

namespace {

constexpr std::uint32_t idx(State s) { return static_cast<std::uint32_t>(s); }

// Written from the description of vfio_from_fsm_table in
// drivers/vfio/vfio_main.c: for every (current, target) the next step when
// every optional feature is supported; ERROR marks a refused transition.
// Steps through optional states the device lacks are skipped by re-looking
// up from the skipped state (see next_state()).
using S = State;
constexpr State kFsmTable[kNumStates][kNumStates] = {
	// from ERROR: nothing is reachable by SET_STATE
	/* ERROR */ {S::Error, S::Error, S::Error, S::Error, S::Error, S::Error, S::Error, S::Error},
	//            to: ERROR     STOP        RUNNING        STOP_COPY     RESUMING     RUNNING_P2P    PRE_COPY       PRE_COPY_P2P
	/* STOP */ {S::Error, S::Stop, S::RunningP2P, S::StopCopy, S::Resuming, S::RunningP2P, S::RunningP2P, S::RunningP2P},
	/* RUNNING */ {S::Error, S::RunningP2P, S::Running, S::RunningP2P, S::RunningP2P, S::RunningP2P, S::PreCopy, S::RunningP2P},
	/* STOP_COPY */ {S::Error, S::Stop, S::Stop, S::StopCopy, S::Stop, S::Stop, S::Error, S::Error},
	/* RESUMING */ {S::Error, S::Stop, S::Stop, S::Stop, S::Resuming, S::Stop, S::Stop, S::Stop},
	/* RUNNING_P2P */ {S::Error, S::Stop, S::Running, S::Stop, S::Stop, S::RunningP2P, S::Running, S::PreCopyP2P},
	/* PRE_COPY */ {S::Error, S::Running, S::Running, S::PreCopyP2P, S::Running, S::Running, S::PreCopy, S::PreCopyP2P},
	/* PRE_COPY_P2P */ {S::Error, S::RunningP2P, S::RunningP2P, S::StopCopy, S::RunningP2P, S::RunningP2P, S::PreCopy, S::PreCopyP2P},
};

// Migration flags a state needs (the kernel's state_flags_table).
constexpr std::uint64_t kStateFlags[kNumStates] = {
	/* ERROR */ ~std::uint64_t{0},
	/* STOP */ kMigStopCopy,
	/* RUNNING */ kMigStopCopy,
	/* STOP_COPY */ kMigStopCopy,
	/* RESUMING */ kMigStopCopy,
	/* RUNNING_P2P */ kMigStopCopy | kMigP2P,
	/* PRE_COPY */ kMigStopCopy | kMigPreCopy,
	/* PRE_COPY_P2P */ kMigStopCopy | kMigP2P | kMigPreCopy,
};

constexpr const char *kNames[kNumStates] = {
	"ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P",
};

bool supported(std::uint32_t s, std::uint64_t flags)
{
	return s < kNumStates && (kStateFlags[s] & flags) == kStateFlags[s];
}

} // namespace

std::string state_name(std::uint32_t raw)
{
	if (raw < kNumStates)
		return kNames[raw];
	return "STATE(" + std::to_string(raw) + ")";
}

std::string state_name(State s) { return state_name(idx(s)); }

std::optional<State> parse_state(std::string_view name)
{
	for (std::uint32_t i = 0; i < kNumStates; i++) {
		std::string_view n = kNames[i];
		if (n.size() == name.size() &&
		    std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
			    return a == std::toupper(static_cast<unsigned char>(b));
		    }))
			return static_cast<State>(i);
	}
	return std::nullopt;
}

std::string mig_flags_name(std::uint64_t flags)
{
	std::string out;
	auto add = [&](std::uint64_t bit, const char *name) {
		if (flags & bit) {
			if (!out.empty())
				out += '|';
			out += name;
			flags &= ~bit;
		}
	};
	add(kMigStopCopy, "STOP_COPY");
	add(kMigP2P, "P2P");
	add(kMigPreCopy, "PRE_COPY");
	if (flags) {
		if (!out.empty())
			out += '|';
		out += "0x" + [&] {
			char buf[32];
			std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(flags));
			return std::string(buf);
		}();
	}
	return out.empty() ? "0" : out;
}

bool is_valid_state(State s, std::uint64_t flags)
{
	return s != State::Error && supported(idx(s), flags);
}

State next_state(State cur, std::uint32_t target, std::uint64_t flags)
{
	// A device can only be in a state its flags support; treat anything
	// else (and undefined targets) as refused, as the kernel does.
	if (!supported(idx(cur), flags) && cur != State::Error)
		return State::Error;
	if (cur == State::Error || target >= kNumStates || !supported(target, flags))
		return State::Error;
	State next = kFsmTable[idx(cur)][target];
	while (next != State::Error && !supported(idx(next), flags))
		next = kFsmTable[idx(next)][target];
	return next;
}

std::optional<std::vector<State>> path(State from, std::uint32_t target, std::uint64_t flags)
{
	std::vector<State> steps;
	State cur = from;
	while (idx(cur) != target) {
		State next = next_state(cur, target, flags);
		if (next == State::Error)
			return std::nullopt;
		steps.push_back(next);
		cur = next;
		if (steps.size() > kNumStates) // cannot happen with the table above
			return std::nullopt;
	}
	return steps;
}

bool in_saving_group(State s)
{
	return s == State::PreCopy || s == State::PreCopyP2P || s == State::StopCopy;
}

bool arc_starts_session(State from, State to)
{
	return (from == State::Running && to == State::PreCopy) ||
	       (from == State::RunningP2P && to == State::PreCopyP2P) ||
	       (from == State::Stop && to == State::StopCopy) ||
	       (from == State::Stop && to == State::Resuming);
}

bool starts_session(State from, State target, std::uint64_t flags)
{
	auto steps = path(from, target, flags);
	if (!steps || steps->empty())
		return false;
	State prev = steps->size() >= 2 ? (*steps)[steps->size() - 2] : from;
	return arc_starts_session(prev, steps->back());
}

std::string path_to_string(const std::vector<State> &steps)
{
	std::string out = "[";
	for (size_t i = 0; i < steps.size(); i++) {
		if (i)
			out += ", ";
		out += state_name(steps[i]);
	}
	return out + "]";
}

} // namespace vfiomig
