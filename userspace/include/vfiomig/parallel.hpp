// The parallel state-change engine: moves a set of devices through a list
// of phases, one thread per device with a barrier between phases (what a
// VMM does at switchover), or one device after the other for comparison.
//
// Source side:      PRE_COPY -> PRE_COPY_P2P (all) | -> STOP_COPY (all)
// Destination side: RESUMING -> RUNNING_P2P (all)  | -> RUNNING (all)
// The barrier is the P2P quiescent rule: no device enters the next phase
// before every device finished the previous one.
//
// Errors: a step that fails is recorded with its device, phase and (for a
// state change) arc and errno. The other devices still finish the phase
// the failure happened in (in both modes), and then no device starts
// another phase. The defined state after a failure in phase k is
// therefore: every device that did not fail completed phase k and is in
// its state (for change_states(): phase k's target), no device entered
// phase k+1, and each failed device is where the kernel left it (the
// arc's from state, a state on the path, or ERROR; `state_after` says
// which). Nothing is rolled back: the caller (e.g. the Migrator, which
// returns sources to RUNNING and resets destinations) decides, with the
// whole report in hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vfiomig/state.hpp"
#include "vfiomig/vfio.hpp"

namespace vfiomig {

enum class ExecMode {
	Parallel,   ///< one std::jthread per device, std::barrier between phases
	Sequential, ///< each phase device by device on the calling thread
};
/// "parallel", "sequential".
std::string exec_mode_name(ExecMode m);

/// One phase: `step(i)` runs for device i (throws vfiomig::Error or any
/// std::exception on failure). `on_complete` runs once every device
/// finished the phase, before any starts the next (the barrier's
/// completion); returning a message aborts the run with it.
struct Phase {
	std::string name;
	std::function<void(std::size_t dev)> step;
	std::function<std::optional<std::string>()> on_complete;
};

/// A failed SET MIG_DEVICE_STATE arc; a step may throw it so the engine
/// reports the arc (change_states() and set_state_step() do).
class ArcError : public Error {
public:
	ArcError(int err, std::string context, State from, State to)
		: Error(err, std::move(context)), from_(from), to_(to) {}
	State from() const noexcept { return from_; }
	State to() const noexcept { return to_; }

private:
	State from_, to_;
};

/// SET MIG_DEVICE_STATE from `from` to `to`, throwing ArcError on failure.
MigrationSession set_state_step(Device &dev, State from, State to);

/// Where a run failed.
struct PhaseError {
	std::size_t device = 0;
	std::string label;  ///< device label (mdev uuid)
	std::string phase;  ///< phase name
	/// The arc, when the failure was a SET MIG_DEVICE_STATE.
	std::optional<State> from, to;
	int err = 0;        ///< errno, 0 when unknown
	std::optional<State> state_after; ///< GET_STATE after the failure
	std::string what;   ///< the full error text
	/// "device <label> phase <p> arc PRE_COPY->PRE_COPY_P2P: <what>".
	std::string describe() const;
};

struct PhaseTiming {
	std::string name;
	double ms = 0;                 ///< phase start -> last device done
	std::vector<double> device_ms; ///< each device's step
};

struct EngineReport {
	ExecMode mode = ExecMode::Parallel;
	bool ok = true;
	std::vector<PhaseTiming> phases; ///< phases that ran (also the failed one)
	/// First phase start -> last phase end. Parallel: the threads are
	/// created and parked before the clock starts.
	double total_ms = 0;
	/// First failure (device steps), or a completion hook's abort.
	std::optional<PhaseError> error;
	/// Every device failure (several devices may fail in one phase).
	std::vector<PhaseError> errors;
	/// Phases completed by every device.
	std::size_t phases_completed = 0;
};

/// Runs generic phases over `n` devices; `labels` (optional) name them in
/// errors. Never throws for a step's error: the report carries it.
class PhaseEngine {
public:
	PhaseEngine(std::size_t n, ExecMode mode, std::vector<std::string> labels = {});
	/// Devices known to the engine: labels from them, and GET_STATE after
	/// a failure fills PhaseError::state_after.
	PhaseEngine(const std::vector<Device *> &devs, ExecMode mode);
	EngineReport run(const std::vector<Phase> &phases);

private:
	std::size_t n_;
	ExecMode mode_;
	std::vector<std::string> labels_;
	std::vector<Device *> devs_;
};

/// The state-change case: every device goes through the same list of
/// target states (one phase per state), each with SET MIG_DEVICE_STATE.
/// Data fds returned on the way are kept (the last one per device).
struct StateChangeResult {
	EngineReport report;
	std::vector<std::optional<DataFd>> data; ///< per device
};

/// Devices in `devs` (not owned; each used by one thread at a time).
/// A device whose state already is the phase's target does nothing in it.
StateChangeResult change_states(const std::vector<Device *> &devs, const std::vector<State> &phases,
				ExecMode mode);

/// The switchover phase lists of the consumer model.
inline const std::vector<State> kSourceSwitchover = {State::PreCopyP2P, State::StopCopy};
inline const std::vector<State> kDestinationSwitchover = {State::RunningP2P, State::Running};

} // namespace vfiomig
