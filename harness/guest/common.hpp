// Shared fixtures for the in-guest suite: a pool of mdev instances per
// profile (created once, reset before every test) and helpers.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "vfio_mig_emu.h"
#include "vfiomig/control.hpp"
#include "vfiomig/emu.hpp"
#include "vfiomig/mdev.hpp"
#include "vfiomig/pump.hpp"
#include "vfiomig/state.hpp"
#include "vfiomig/stream.hpp"
#include "vfiomig/vfio.hpp"

namespace vfiomig::test {

/// An mdev instance and its open device. The device is declared last so
/// it is closed before the instance is removed.
struct Instance {
	MdevInstance mdev;
	Device dev;
	std::uint64_t flags = 0; ///< VFIO_MIGRATION_* read from the device
};

/// The instance `slot` (0 = source, 1 = destination) of a profile,
/// created on first use and kept until release_pool().
Instance &pool(Profile p, int slot);
/// Closes and removes every pooled instance (before the module unloads).
void release_pool();

/// The shared control-plane client, or nullptr with `why` set when the
/// family is absent.
control::Client *nl(std::string *why = nullptr);
/// The shared subscription to the "events" group (nullptr as nl()).
control::EventSubscription *events();

/// Skips the current test when the netlink control plane is absent.
#define REQUIRE_CONTROL()                                                             \
	do {                                                                          \
		std::string why_;                                                     \
		if (!nl(&why_))                                                  \
			GTEST_SKIP() << "no vfio_mig_emu control plane: " << why_;   \
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

/// A test on instances of one profile; SetUp skips when the module is
/// absent and resets the source instance.
class ProfileFixture : public ::testing::Test {
protected:
	void SetUp() override;
	virtual Profile profile() const = 0;
	/// The source instance, reset.
	Device &src() { return src_->dev; }
	/// Whether SetUp got as far as the source instance (not when skipped).
	bool has_src() const { return src_ != nullptr; }
	/// The destination instance (reset on first call in a test).
	Device &dst();
	std::uint64_t flags() const { return src_->flags; }
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
};

/// Parameterised over the four profiles.
class ProfileTest : public ProfileFixture, public ::testing::WithParamInterface<Profile> {
protected:
	Profile profile() const override { return GetParam(); }
};

/// Skips the current test unless the device has migration flag `flag`.
#define REQUIRE_MIG_FLAG(flag)                                                            \
	do {                                                                              \
		if (!has(flag))                                                           \
			GTEST_SKIP() << "profile " << profile_name(profile()) << " lacks "  \
				     << mig_flags_name(flag);                             \
	} while (0)

/// "full", "stopcopy", ... as test-name suffixes.
std::string profile_param_name(const ::testing::TestParamInfo<Profile> &info);

#define VFIOMIG_INSTANTIATE_PROFILES(suite) \
	INSTANTIATE_TEST_SUITE_P(Profiles, suite, ::testing::ValuesIn(vfiomig::kAllProfiles), \
				 vfiomig::test::profile_param_name)

} // namespace vfiomig::test
