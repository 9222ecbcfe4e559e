// Runs operation lists against fresh vfio_mig_emu instances (one thread
// per list) and checks every result against the model (model.hpp).
// Guest only: needs the module loaded.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ops.hpp"

namespace vfiomig::fuzz {

/// A broken invariant: where, which rule ("set.forbidden_accepted"), what.
struct Finding {
	unsigned thread = 0;
	std::size_t index = 0; ///< position in that thread's list; SIZE_MAX: at teardown
	std::string check;
	std::string message;
};

/// One executed operation as recorded.
struct Step {
	unsigned thread = 0;
	std::size_t index = 0;
	std::uint64_t seq = 0; ///< global order in which steps took effect
	Op op;
	std::string detail; ///< what the raw arguments resolved to
	std::string result; ///< "ok fd", "EINVAL", "ok 4096 bytes", ...
};

struct RunOptions {
	unsigned devices = 4;
	bool record = false;          ///< keep every Step (reports, replays)
	double progress_seconds = 0;  ///< 0: no progress lines
	std::string label = "run";    ///< prefix of progress lines
};

struct RunResult {
	std::optional<Finding> finding;
	std::vector<Step> steps; ///< when recording, in seq order
	std::size_t executed = 0;
	double seconds = 0;
	std::vector<std::size_t> per_kind; ///< executed operations by OpKind
};

/// Creates `opt.devices` instances (profile i % 4: full, stopcopy, p2p,
/// precopy), runs each list on its own thread until all are done or one
/// finds something (the others stop), then removes the instances.
/// Throws Error when the instances cannot be set up.
RunResult run(const std::vector<std::vector<Op>> &lists, const RunOptions &opt);

} // namespace vfiomig::fuzz
