// VFIO migration states, flags, and a pure reference implementation of the
// kernel's combination-transition algorithm (vfio_mig_get_next_state()).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfiomig {

/// enum vfio_device_mig_state, values as on the wire.
enum class State : std::uint32_t {
	Error = 0,
	Stop = 1,
	Running = 2,
	StopCopy = 3,
	Resuming = 4,
	RunningP2P = 5,
	PreCopy = 6,
	PreCopyP2P = 7,
};

/// Number of defined states (ERROR included); values >= this are invalid.
inline constexpr std::uint32_t kNumStates = 8;

/// All states in value order, ERROR first.
inline constexpr State kAllStates[] = {
	State::Error,    State::Stop,       State::Running, State::StopCopy,
	State::Resuming, State::RunningP2P, State::PreCopy, State::PreCopyP2P,
};

/// VFIO_MIGRATION_* flags (VFIO_DEVICE_FEATURE_MIGRATION).
enum MigFlags : std::uint64_t {
	kMigStopCopy = 1u << 0,
	kMigP2P = 1u << 1,
	kMigPreCopy = 1u << 2,
};

/// "RUNNING", "STOP_COPY", ...; "STATE(<n>)" for undefined values.
std::string state_name(State s);
std::string state_name(std::uint32_t raw);
/// Inverse of state_name() for the defined states (case-insensitive).
std::optional<State> parse_state(std::string_view name);
/// "STOP_COPY|P2P|PRE_COPY".
std::string mig_flags_name(std::uint64_t flags);

/// True when `s` may be used with SET_STATE on a device with `flags`
/// (ERROR never can).
bool is_valid_state(State s, std::uint64_t flags);

/// One step of the kernel algorithm: the next state on the way from `cur`
/// to `target`, or State::Error when the transition is refused (target
/// unsupported, undefined, ERROR, or a blocked arc like STOP_COPY->PRE_COPY).
/// `target` is a raw value so undefined states can be expressed.
State next_state(State cur, std::uint32_t target, std::uint64_t flags);

/// The full list of steps from `from` to `target` (excluding `from`):
/// empty when from == target, std::nullopt when refused.
std::optional<std::vector<State>> path(State from, std::uint32_t target,
				       std::uint64_t flags);
inline std::optional<std::vector<State>> path(State from, State target,
					      std::uint64_t flags)
{
	return path(from, static_cast<std::uint32_t>(target), flags);
}

/// PRE_COPY, PRE_COPY_P2P and STOP_COPY share one saving session.
bool in_saving_group(State s);

/// True when the single arc from -> to opens a data transfer session and
/// so returns a data fd: RUNNING->PRE_COPY, RUNNING_P2P->PRE_COPY_P2P,
/// STOP->STOP_COPY, STOP->RESUMING.
bool arc_starts_session(State from, State to);

/// True when SET_STATE from `from` to `target` on a device with `flags`
/// must return a data fd: the last step of path() starts a session.
bool starts_session(State from, State target, std::uint64_t flags);

/// "[STOP, STOP_COPY]".
std::string path_to_string(const std::vector<State> &steps);

} // namespace vfiomig
