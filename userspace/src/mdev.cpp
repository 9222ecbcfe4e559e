#include "vfiomig/mdev.hpp"

#include <filesystem>
#include <uuid/uuid.h>

#include "vfio_mig_emu.h"
#include "vfiomig/state.hpp"

namespace vfiomig {

namespace fs = std::filesystem;

namespace {
constexpr const char *kProfileNames[] = VFIO_MIG_EMU_PROFILE_NAMES;
static_assert(std::size(kProfileNames) == VFIO_MIG_EMU_PROFILE_COUNT);
} // namespace

std::string profile_name(Profile p)
{
	auto i = static_cast<std::uint32_t>(p);
	return i < VFIO_MIG_EMU_PROFILE_COUNT ? kProfileNames[i] : "profile" + std::to_string(i);
}

std::optional<Profile> parse_profile(std::string_view name)
{
	for (std::uint32_t i = 0; i < VFIO_MIG_EMU_PROFILE_COUNT; i++)
		if (name == kProfileNames[i])
			return static_cast<Profile>(i);
	return std::nullopt;
}

std::uint64_t profile_mig_flags(Profile p)
{
	switch (p) {
	case Profile::Full: return kMigStopCopy | kMigP2P | kMigPreCopy;
	case Profile::StopCopy: return kMigStopCopy;
	case Profile::P2P: return kMigStopCopy | kMigP2P;
	case Profile::PreCopy: return kMigStopCopy | kMigPreCopy;
	}
	return 0;
}

std::string mdev_parent_path()
{
	return std::string("/sys/devices/virtual/") + VFIO_MIG_EMU_NAME + "/" + VFIO_MIG_EMU_NAME;
}

std::string mdev_type_path(Profile p)
{
	return mdev_parent_path() + "/mdev_supported_types/" + VFIO_MIG_EMU_NAME + "-" + profile_name(p);
}

bool module_loaded()
{
	std::error_code ec;
	return fs::exists(mdev_parent_path() + "/mdev_supported_types", ec);
}

std::string mdev_device_path(const std::string &uuid) { return "/sys/bus/mdev/devices/" + uuid; }

MdevInstance MdevInstance::create(Profile p)
{
	uuid_t u;
	uuid_generate_random(u);
	char text[37];
	uuid_unparse_lower(u, text);
	std::string path = mdev_type_path(p) + "/create";
	try_write_file(path, text).value();
	return MdevInstance(text, p);
}

MdevInstance::MdevInstance(MdevInstance &&other) noexcept
	: uuid_(std::exchange(other.uuid_, {})), profile_(other.profile_)
{
}

MdevInstance &MdevInstance::operator=(MdevInstance &&other) noexcept
{
	if (this != &other) {
		(void)remove();
		uuid_ = std::exchange(other.uuid_, {});
		profile_ = other.profile_;
	}
	return *this;
}

MdevInstance::~MdevInstance() { (void)remove(); }

Status MdevInstance::remove()
{
	if (uuid_.empty())
		return Unit{};
	auto r = try_write_file(sysfs_path() + "/remove", "1");
	uuid_.clear();
	return r;
}

std::vector<MdevListing> list_instances()
{
	std::vector<MdevListing> out;
	std::error_code ec;
	for (const auto &e : fs::directory_iterator("/sys/bus/mdev/devices", ec)) {
		auto type = fs::read_symlink(e.path() / "mdev_type", ec);
		if (ec)
			continue;
		std::string tname = type.filename().string();
		std::string prefix = std::string(VFIO_MIG_EMU_NAME) + "-";
		if (tname.rfind(prefix, 0) != 0)
			continue;
		out.push_back({e.path().filename().string(), tname, parse_profile(tname.substr(prefix.size()))});
	}
	return out;
}

} // namespace vfiomig
