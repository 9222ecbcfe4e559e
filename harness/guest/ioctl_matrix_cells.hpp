// The executable side of the ioctl matrix: every call and condition the
// table (fixtures/ioctl-matrix.tsv) may name, and how one row is run.
#pragma once

#include <functional>

#include "common.hpp"
#include "ioctl_matrix_table.hpp"

namespace vfiomig::test::cells {

/// The calls and, per call, the conditions the suite can execute. The
/// table must name exactly these (matrix::parse_table checks both ways).
const matrix::Registry &registry();

/// The devices a row may run on: the profile's pooled source instance
/// (reset), the instance that has opted in to PRECOPY_INFOv2, and a way to
/// make a throw-away instance (for conditions that close the device).
struct Devices {
	Target param;           ///< the emulated profile, or the foreign target
	Device *src = nullptr;
	Device *dst = nullptr;  ///< a second instance, reset; nullptr when there is none
	std::function<Device &()> v2;
	matrix::Target target;
};

/// Runs one row: sets up the condition, makes the call, compares the
/// outcome with the row's expectation and checks the state afterwards.
/// Failures are reported through gtest and name the row's line and rule.
/// On a foreign target a row marked as vfio_mig_emu's choice (its rule
/// starts with "module:") that comes out differently is a skip naming the
/// difference, not a failure; a scene the target cannot be brought into
/// through the uAPI alone is a skip saying why.
void run(const matrix::Row &row, Devices &devs);

} // namespace vfiomig::test::cells
