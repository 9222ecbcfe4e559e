// vfio-migtest --quirk-check: the suite against each seeded driver bug of
// vfio_mig_emu in turn (see quirk_check.cpp).
#pragma once

namespace vfiomig::test {

/// True when the command line asks for --quirk-check.
bool is_quirk_check(int argc, char **argv);
/// Runs the quirk check; returns the process exit status.
int quirk_check_main(int argc, char **argv);

} // namespace vfiomig::test
