// Shared fixtures for the in-guest suite: the targets it runs on (the
// emulated device's four profiles, or a foreign device given with
// --device), a pool of open instances (created once, reset before every
// test) and helpers.
//
// How a test declares what it needs
// ---------------------------------
// Without --device the suite creates vfio_mig_emu instances and every test
// applies.  With --device PATH [--device PATH2] it runs on that "foreign"
// device (any vfio device: an mdev of another driver, a PCI function bound
// to vfio-pci or a variant driver) and the target-parameterised suites
// (ProfileTest, VFIOMIG_INSTANTIATE_PROFILES) have one parameter, "target",
// instead of the four profiles.  A test states its needs at the top of its
// body (or in its fixture's SetUp); each is a skip with the reason when the
// target does not meet it, never a silent pass:
//   REQUIRE_EMU("what")      drives vfio_mig_emu's device model: BAR0/BAR2
//                            register semantics, doorbells, the digest, the
//                            stream format; skipped on a foreign target;
//   REQUIRE_CONTROL()        the vfio_mig_emu control plane (faults, knobs,
//                            counters, events); skipped on a foreign target;
//   REQUIRE_MIG_FLAG(flag)   a VFIO_MIGRATION_* flag, read from the device;
//   REQUIRE_DESTINATION()    a second instance (dst()): a foreign target
//                            needs the second --device;
//   REQUIRE_CAP(field, what) an optional feature found by PROBE
//                            (MigrationCaps::data_size, precopy_info_v2, ...).
// A test that is generic apart from an incidental step (scribbling some
// state with emu::scribble before a migration) guards that step with
// `if (emulated())` rather than skipping.  Fixtures that do not derive
// from ProfileFixture (whole-module tests on fresh instances) start their
// SetUp with REQUIRE_EMU or REQUIRE_CONTROL.
//
// A known deviation of a foreign driver is a row of
// fixtures/known-issues/DRIVER.tsv: a test pattern, the symptom (text of
// the failure) and the reason. The test still runs; failing with the
// symptom makes it a skip "known issue of DRIVER (expected failure): ...",
// any other failure fails as usual, and passing makes it fail so the
// stale entry is removed.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "known_issues.hpp"
#include "vfio_mig_emu.h"
#include "vfiomig/control.hpp"
#include "vfiomig/emu.hpp"
#include "vfiomig/mdev.hpp"
#include "vfiomig/pump.hpp"
#include "vfiomig/state.hpp"
#include "vfiomig/stream.hpp"
#include "vfiomig/vfio.hpp"

namespace vfiomig::test {

/// What the suite runs on, from the command line (main.cpp).
struct TargetConfig {
	/// --device sysfs paths: the source, then the destination. Empty: the
	/// emulated device (vfio_mig_emu instances created by the suite).
	std::vector<std::string> devices;
	Backend backend = Backend::Auto; ///< --backend
};
/// --device/--backend help text for --help.
extern const char *const kTargetUsage;
/// Takes --device PATH (up to twice) and --backend NAME out of argv; the
/// rest stays for InitGoogleTest. nullopt with `error` set on a bad option.
std::optional<TargetConfig> parse_target_options(int &argc, char **argv, std::string &error);
/// Sets the configuration and, in foreign mode, opens the devices (so that
/// the parameter generators can use their flags); before InitGoogleTest.
/// Throws Error naming the device when one cannot be opened.
void configure_targets(TargetConfig c);
const TargetConfig &target_config();
/// True when the suite runs on the emulated device (no --device).
bool emulated();
/// The foreign driver's name: the mdev type ("mtty-2") or the PCI driver
/// ("vfio-pci", "mlx5_vfio_pci"); "" in emulated mode.
std::string foreign_driver();
/// True when the foreign device is a PCI function (not an mdev).
bool foreign_driver_is_pci();
/// "target mtty-2 (foreign)" — the prefix of every foreign skip reason.
std::string foreign_label();
/// One line per opened foreign device: path, backend, MigrationCaps.
std::string describe_targets();

/// The parameter of the target-parameterised suites: an emulated profile,
/// or (nullopt) the foreign device.
struct Target {
	std::optional<Profile> profile;
	bool foreign() const { return !profile; }
	/// "full", "stopcopy", "p2p", "precopy" or "target".
	std::string name() const;
};
/// The four profiles, or {target} with --device: evaluated by gtest when
/// InitGoogleTest registers the parameterised tests, after main has
/// called configure_targets().
std::vector<Target> target_params();

/// An open device: an mdev instance of vfio_mig_emu (created by the
/// suite) or a foreign device (the user's). The device is declared last so
/// it is closed before the instance is removed.
struct Instance {
	std::optional<MdevInstance> mdev; ///< nullopt for a foreign device
	Device dev;
	std::uint64_t flags = 0; ///< VFIO_MIGRATION_* read from the device
	MigrationCaps caps;
};

/// The instance `slot` (0 = source, 1 = destination, 2.. more) of a
/// target, opened (emulated: created) on first use and kept until
/// release_pool(). A foreign target has as many slots as --device options;
/// another slot throws Error(ENODEV).
Instance &pool(const Target &t, int slot);
inline Instance &pool(Profile p, int slot) { return pool(Target{p}, slot); }
/// Opens a device through the configured --backend (tests opening their
/// own instances use this, so that --backend cdev covers them too).
Device open_device(const std::string &sysfs_path);
/// Whether pool(t, slot) exists or can be created.
bool pool_has(const Target &t, int slot);
/// Closes (emulated: and removes) one pooled instance; the next pool()
/// opens it again.
void release_instance(const Target &t, int slot);
/// Closes and removes every pooled instance (before the module unloads).
void release_pool();

/// The shared control-plane client, or nullptr with `why` set when the
/// family is absent.
control::Client *nl(std::string *why = nullptr);
/// The shared subscription to the "events" group (nullptr as nl()).
control::EventSubscription *events();

/// Skips the current test on a foreign target, or when the netlink
/// control plane is absent.
#define REQUIRE_CONTROL()                                                                          \
	do {                                                                                       \
		if (!::vfiomig::test::emulated())                                                  \
			GTEST_SKIP() << ::vfiomig::test::foreign_label()                           \
				     << ": needs the vfio_mig_emu control plane";                   \
		std::string why_;                                                                  \
		if (!nl(&why_))                                                                    \
			GTEST_SKIP() << "no vfio_mig_emu control plane: " << why_;                \
	} while (0)

/// Skips the current test on a foreign target: it needs vfio_mig_emu's
/// device model (`what`: "the digest", "BAR0 register semantics", ...).
#define REQUIRE_EMU(what)                                                                          \
	do {                                                                                       \
		if (!::vfiomig::test::emulated())                                                  \
			GTEST_SKIP() << ::vfiomig::test::foreign_label() << ": needs vfio_mig_emu's " \
				     << (what);                                                    \
	} while (0)

/// Removes every fault of a device when it goes out of scope.
class FaultGuard {
public:
	explicit FaultGuard(std::string uuid) : uuid_(std::move(uuid)) {}
	FaultGuard(const FaultGuard &) = delete;
	FaultGuard &operator=(const FaultGuard &) = delete;
	~FaultGuard()
	{
		if (control::Client *c = nl()) {
			try {
				c->clear_faults(uuid_);
			} catch (const Error &) {
			}
		}
	}

private:
	std::string uuid_;
};

/// gtest predicates for Result<T>: the failure message is the Result's
/// error (call, arguments, device, errno).
template <typename R>
::testing::AssertionResult IsOk(const R &r)
{
	if (r.ok())
		return ::testing::AssertionSuccess();
	return ::testing::AssertionFailure() << r.describe();
}
template <typename R>
::testing::AssertionResult HasErrno(const R &r, int err)
{
	if (!r.ok() && r.err() == err)
		return ::testing::AssertionSuccess();
	return ::testing::AssertionFailure() << "expected " << errno_name(err) << ", got "
					     << (r.ok() ? std::string("success") : r.describe());
}

/// Assert/expect a Result succeeded, or failed with exactly errno `e`.
/// Further context can be streamed: ASSERT_OK(x) << "while ...".
#define ASSERT_OK(expr) ASSERT_TRUE(::vfiomig::test::IsOk(expr)) << #expr << ": "
#define EXPECT_OK(expr) EXPECT_TRUE(::vfiomig::test::IsOk(expr)) << #expr << ": "
#define EXPECT_ERRNO(expr, e) EXPECT_TRUE(::vfiomig::test::HasErrno((expr), (e))) << #expr << ": "

/// A test on instances of one target; SetUp skips when the target is not
/// there (module absent; an emulated-only fixture in foreign mode) and
/// resets the source instance.
class ProfileFixture : public ::testing::Test {
protected:
	void SetUp() override;
	void TearDown() override;
	virtual Target target() const = 0;
	/// The emulated profile; throws on a foreign target (a test that needs
	/// it lacks its REQUIRE_EMU).
	Profile profile() const;
	/// "profile full" or "target mtty-2 (foreign)", for messages.
	std::string target_label() const;
	/// The source instance, reset.
	Device &src() { return src_->dev; }
	/// Whether SetUp got as far as the source instance (not when skipped).
	bool has_src() const { return src_ != nullptr; }
	/// The destination instance (reset on first call in a test). A test
	/// calling it declares REQUIRE_DESTINATION() first.
	Device &dst();
	bool has_destination() const { return pool_has(target(), 1); }
	std::uint64_t flags() const { return src_->flags; }
	const MigrationCaps &caps() const { return src_->caps; }
	bool has(std::uint64_t flag) const { return (flags() & flag) == flag; }

	/// Moves `dev` from its current (known) state to `to`; returns the
	/// data fd SET_STATE gave, if any.
	MigrationSession go(Device &dev, State to);
	/// A complete STOP_COPY stream of `dev` (RUNNING -> STOP_COPY ->
	/// read to EOF -> STOP). Leaves the device in STOP.
	Bytes save(Device &dev, const PumpOptions &opt = {});
	/// Writes a stream into `dev` in RESUMING; returns the first write error.
	Status load_stream(Device &dev, DataFd &fd, ByteSpan stream, const std::vector<std::size_t> &sizes = {});
	StreamExpect expect(Device &dev) { return {static_cast<std::uint32_t>(profile()), emu::mem_size(dev)}; }

private:
	Instance *src_ = nullptr;
	Instance *dst_ = nullptr;
	// Failures of a test with a known issue, held back until TearDown.
	std::vector<const KnownIssue *> xfail_issues_;
	std::unique_ptr<::testing::TestPartResultArray> xfail_results_;
	std::shared_ptr<void> xfail_reporter_;
};

/// Parameterised over the targets (target_params()).
class ProfileTest : public ProfileFixture, public ::testing::WithParamInterface<Target> {
protected:
	Target target() const override { return GetParam(); }
};

/// Skips the current test unless the device has migration flag `flag`.
#define REQUIRE_MIG_FLAG(flag)                                                                     \
	do {                                                                                       \
		if (!has(flag))                                                                    \
			GTEST_SKIP() << target_label() << " lacks " << mig_flags_name(flag);       \
	} while (0)

/// Skips the current test unless the target has a destination instance.
#define REQUIRE_DESTINATION()                                                                      \
	do {                                                                                       \
		if (!has_destination())                                                            \
			GTEST_SKIP() << target_label()                                             \
				     << ": needs two instances (give a second --device)";           \
	} while (0)

/// Skips the current test unless PROBE found MigrationCaps::`field`.
#define REQUIRE_CAP(field, what)                                                                   \
	do {                                                                                       \
		if (!caps().field)                                                                 \
			GTEST_SKIP() << target_label() << " lacks " << (what) << " (PROBE)";       \
	} while (0)

/// "full", "stopcopy", ... or "target" as test-name suffixes.
std::string target_param_name(const ::testing::TestParamInfo<Target> &info);

#define VFIOMIG_INSTANTIATE_PROFILES(suite) \
	INSTANTIATE_TEST_SUITE_P(Profiles, suite, ::testing::ValuesIn(vfiomig::test::target_params()), \
				 vfiomig::test::target_param_name)

/// The foreign driver's known deviations (fixtures/known-issues/DRIVER.tsv,
/// or the directory $VFIOMIG_KNOWN_ISSUES); empty in emulated mode.
const std::vector<KnownIssue> &foreign_known_issues();

/// Whether `cond()` holds within `limit`, asked every 20 ms.  For effects
/// that take time (a background worker, a timer): the limit only bounds a
/// broken device, so it can be generous without slowing a working one.
template <typename F>
bool eventually(F &&cond, std::chrono::milliseconds limit = std::chrono::milliseconds(10000))
{
	auto end = std::chrono::steady_clock::now() + limit;
	for (;;) {
		if (cond())
			return true;
		if (std::chrono::steady_clock::now() >= end)
			return false;
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
	}
}

} // namespace vfiomig::test
