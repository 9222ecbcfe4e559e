// vfio_mig_emu mdev instances: profiles and RAII creation/removal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfiomig/fd.hpp"

namespace vfiomig {

/// enum vfio_mig_emu_profile.
enum class Profile : std::uint32_t {
	Full = 0,
	StopCopy = 1,
	P2P = 2,
	PreCopy = 3,
};
inline constexpr Profile kAllProfiles[] = {Profile::Full, Profile::StopCopy, Profile::P2P, Profile::PreCopy};

/// "full", "stopcopy", "p2p", "precopy".
std::string profile_name(Profile p);
std::optional<Profile> parse_profile(std::string_view name);
/// The VFIO_MIGRATION_* flags the uAPI header promises for a profile.
std::uint64_t profile_mig_flags(Profile p);

/// /sys/devices/virtual/vfio_mig_emu/vfio_mig_emu
std::string mdev_parent_path();
/// .../mdev_supported_types/vfio_mig_emu-<profile>
std::string mdev_type_path(Profile p);
/// True when the module's mdev parent is registered.
bool module_loaded();
/// /sys/bus/mdev/devices/<uuid>
std::string mdev_device_path(const std::string &uuid);

/// An mdev instance of a vfio_mig_emu profile; removed on destruction.
class MdevInstance {
public:
	/// Writes a fresh libuuid UUID to the type's "create" attribute.
	static MdevInstance create(Profile p);
	MdevInstance(MdevInstance &&other) noexcept;
	MdevInstance &operator=(MdevInstance &&other) noexcept;
	MdevInstance(const MdevInstance &) = delete;
	MdevInstance &operator=(const MdevInstance &) = delete;
	~MdevInstance();

	const std::string &uuid() const { return uuid_; }
	Profile profile() const { return profile_; }
	std::string sysfs_path() const { return mdev_device_path(uuid_); }
	/// Removes the instance now; returns the errno on failure.
	Status remove();

private:
	MdevInstance(std::string uuid, Profile p) : uuid_(std::move(uuid)), profile_(p) {}
	std::string uuid_;
	Profile profile_ = Profile::Full;
};

/// An existing instance found in sysfs.
struct MdevListing {
	std::string uuid;
	std::string type; ///< mdev type name, e.g. "vfio_mig_emu-full"
	std::optional<Profile> profile;
};
/// Every mdev instance whose type belongs to vfio_mig_emu.
std::vector<MdevListing> list_instances();

} // namespace vfiomig
