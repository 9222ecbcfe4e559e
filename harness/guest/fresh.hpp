// A fresh vfio_mig_emu instance owned by one test: its PRECOPY_INFOv2
// opt-in and its knobs die with it, so pooled instances stay untouched.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "common.hpp"

namespace vfiomig::test {

/// Whether the module offers profile `p`: none with PRE_COPY where the
/// kernel's vfio core lacks PRE_COPY (Linux 6.1).
inline bool profile_offered(Profile p)
{
	return std::filesystem::exists(mdev_type_path(p));
}

/// Skips the current test unless the module offers profile `p`.
#define SKIP_UNLESS_OFFERED(p)                                                                     \
	do {                                                                                       \
		if (!profile_offered(p))                                                           \
			GTEST_SKIP() << "profile " << profile_name(p) << " not offered by the module (" \
				     << mdev_type_path(p) << " absent: the vfio core lacks its states)"; \
	} while (0)

struct Fresh {
	std::optional<MdevInstance> mdev; ///< nullopt: a foreign device, reopened
	Device dev; ///< declared last: closed before the instance is removed
	static std::unique_ptr<Fresh> make(Profile p)
	{
		MdevInstance m = MdevInstance::create(p);
		Device d = open_device(m.sysfs_path());
		return std::unique_ptr<Fresh>(new Fresh{std::move(m), std::move(d)});
	}
	/// An emulated target: a new instance of its profile. A foreign one:
	/// the pooled source is closed and its device opened again, so what
	/// dies with an open (an opt-in, a session) dies with this one too; the
	/// pool opens it again for the next test.
	static std::unique_ptr<Fresh> make(const Target &t)
	{
		if (t.profile)
			return make(*t.profile);
		release_instance(t, 0);
		Device d = open_device(target_config().devices.at(0));
		return std::unique_ptr<Fresh>(new Fresh{std::nullopt, std::move(d)});
	}
};

} // namespace vfiomig::test
