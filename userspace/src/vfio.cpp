#include "vfiomig/vfio.hpp"

#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>
#include <vector>

namespace vfiomig {

namespace {

std::string feature_name(std::uint32_t feature)
{
	switch (feature) {
	case VFIO_DEVICE_FEATURE_MIGRATION: return "MIGRATION";
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: return "MIG_DEVICE_STATE";
	case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: return "MIG_DATA_SIZE";
	case VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2: return "MIG_PRECOPY_INFOv2";
	default: return "FEATURE(" + std::to_string(feature) + ")";
	}
}

std::string feature_op(std::uint32_t flags)
{
	std::string op;
	if (flags & VFIO_DEVICE_FEATURE_PROBE)
		op += "PROBE|";
	if (flags & VFIO_DEVICE_FEATURE_GET)
		op += "GET|";
	if (flags & VFIO_DEVICE_FEATURE_SET)
		op += "SET|";
	if (op.empty())
		return "NONE";
	op.pop_back();
	return op;
}

} // namespace

// --- container / group ------------------------------------------------------

std::shared_ptr<Container> Container::open()
{
	auto c = std::make_shared<Container>();
	c->fd_ = Fd::open("/dev/vfio/vfio", O_RDWR);
	int version = ioctl_noarg(c->fd(), VFIO_GET_API_VERSION, "VFIO_GET_API_VERSION").value();
	if (version != VFIO_API_VERSION)
		throw_error(EINVAL, "VFIO_GET_API_VERSION returned " + std::to_string(version));
	int ok = ioctl_value(c->fd(), VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU,
			     "VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU)").value();
	if (!ok)
		throw_error(ENODEV, "VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU): not supported "
				    "(is vfio_iommu_type1 loaded?)");
	return c;
}

void Container::set_iommu_type1v2()
{
	ioctl_value(fd(), VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, "VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)").value();
	iommu_set_ = true;
}

std::shared_ptr<Group> Group::open(int group_id)
{
	auto g = std::make_shared<Group>();
	g->id_ = group_id;
	std::string path = "/dev/vfio/" + std::to_string(group_id);
	g->fd_ = Fd::open(path, O_RDWR);
	struct vfio_group_status status = {};
	status.argsz = sizeof(status);
	ioctl(g->fd(), VFIO_GROUP_GET_STATUS, &status, "VFIO_GROUP_GET_STATUS(" + path + ")").value();
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		throw_error(EBUSY, path + ": group not viable (not all devices bound to vfio)");
	return g;
}

void Group::attach(std::shared_ptr<Container> container)
{
	int cfd = container->fd().get();
	ioctl(fd(), VFIO_GROUP_SET_CONTAINER, &cfd,
	      "VFIO_GROUP_SET_CONTAINER(/dev/vfio/" + std::to_string(id_) + ")")
		.value();
	if (!container->iommu_set())
		container->set_iommu_type1v2();
	container_ = std::move(container);
}

Fd Group::get_device_fd(const std::string &name) const
{
	int fd = ::ioctl(fd_.get(), VFIO_GROUP_GET_DEVICE_FD, name.c_str());
	if (fd < 0)
		throw_error(errno, "VFIO_GROUP_GET_DEVICE_FD(" + name + ") on /dev/vfio/" + std::to_string(id_));
	return Fd(fd);
}

std::shared_ptr<Iommufd> Iommufd::open()
{
	auto i = std::make_shared<Iommufd>();
	i->fd_ = Fd::open("/dev/iommu", O_RDWR);
	uapi::ioas_alloc alloc = {};
	alloc.size = sizeof(alloc);
	ioctl(i->fd(), VFIOMIG_IOMMU_IOAS_ALLOC, &alloc, "IOMMU_IOAS_ALLOC on /dev/iommu").value();
	i->ioas_id_ = alloc.out_ioas_id;
	return i;
}

std::string backend_name(Backend b)
{
	switch (b) {
	case Backend::Auto: return "auto";
	case Backend::Group: return "group";
	case Backend::Cdev: return "cdev";
	}
	return "?";
}

std::optional<Backend> parse_backend(std::string_view name)
{
	for (Backend b : {Backend::Auto, Backend::Group, Backend::Cdev})
		if (name == backend_name(b))
			return b;
	return std::nullopt;
}

std::string MigrationCaps::describe() const
{
	std::string s = flags ? "flags " + mig_flags_name(flags)
			      : "not migratable (GET MIGRATION: " + errno_name(migration_errno) + ")";
	s += data_size ? ", MIG_DATA_SIZE" : ", no MIG_DATA_SIZE";
	s += precopy_info_v2 ? ", PRECOPY_INFOv2" : ", no PRECOPY_INFOv2";
	s += dma_logging ? ", DMA logging" : ", no DMA logging";
	return s;
}

int iommu_group_of(const std::string &sysfs_path)
{
	std::error_code ec;
	auto target = std::filesystem::read_symlink(sysfs_path + "/iommu_group", ec);
	if (ec)
		throw_error(ec.value(), "readlink(" + sysfs_path + "/iommu_group)");
	return std::stoi(target.filename().string());
}

std::optional<std::string> vfio_cdev_of(const std::string &sysfs_path)
{
	std::error_code ec;
	for (const auto &e : std::filesystem::directory_iterator(sysfs_path + "/vfio-dev", ec))
		if (e.path().filename().string().starts_with("vfio"))
			return "/dev/vfio/devices/" + e.path().filename().string();
	return std::nullopt;
}

// --- data fd -------------------------------------------------------------------

DataFd::DataFd(Fd fd, std::string label, std::string session)
	: fd_(std::move(fd)), label_(std::move(label)), session_(std::move(session))
{
}

Result<std::size_t> DataFd::read(std::span<std::uint8_t> buf)
{
	ssize_t n;
	do
		n = ::read(fd_.get(), buf.data(), buf.size());
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return Result<std::size_t>::failure(errno, "read(" + std::to_string(buf.size()) + ") on " + session_);
	return static_cast<std::size_t>(n);
}

Result<std::size_t> DataFd::write(std::span<const std::uint8_t> buf)
{
	ssize_t n;
	do
		n = ::write(fd_.get(), buf.data(), buf.size());
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return Result<std::size_t>::failure(errno, "write(" + std::to_string(buf.size()) + ") on " + session_);
	return static_cast<std::size_t>(n);
}

Result<PrecopyInfo> DataFd::precopy_info(std::uint32_t flags_in)
{
	uapi::precopy_info info = {};
	info.argsz = sizeof(info);
	info.flags = flags_in;
	auto r = ioctl(fd(), VFIO_MIG_GET_PRECOPY_INFO, &info, "VFIO_MIG_GET_PRECOPY_INFO on " + session_);
	if (!r)
		return Result<PrecopyInfo>::failure(r.err(), r.context());
	return PrecopyInfo{info.flags, info.initial_bytes, info.dirty_bytes};
}

// --- device ----------------------------------------------------------------------

Device::Device(Fd fd, std::string label, std::shared_ptr<void> keepalive)
	: fd_(std::move(fd)), label_(std::move(label)), keepalive_(std::move(keepalive))
{
}

namespace {

Device open_group(const std::string &sysfs_path, const std::string &name)
{
	auto group = Group::open(iommu_group_of(sysfs_path));
	group->attach(Container::open());
	Fd fd = group->get_device_fd(name);
	return Device(std::move(fd), name, group);
}

Device open_cdev(const std::string &sysfs_path, const std::string &name)
{
	auto cdev = vfio_cdev_of(sysfs_path);
	if (!cdev)
		throw_error(ENOENT, sysfs_path + "/vfio-dev: no vfio device cdev (kernel without "
						 "CONFIG_VFIO_DEVICE_CDEV, or not a vfio device)");
	Fd fd = Fd::open(*cdev, O_RDWR);
	auto iommufd = Iommufd::open();
	uapi::bind_iommufd bind = {};
	bind.argsz = sizeof(bind);
	bind.iommufd = iommufd->fd().get();
	ioctl(fd.view(), VFIO_DEVICE_BIND_IOMMUFD, &bind,
	      "VFIO_DEVICE_BIND_IOMMUFD(" + *cdev + " of " + name + ")")
		.value();
	uapi::attach_iommufd_pt attach = {};
	attach.argsz = sizeof(attach);
	attach.pt_id = iommufd->ioas_id();
	ioctl(fd.view(), VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach,
	      "VFIO_DEVICE_ATTACH_IOMMUFD_PT(ioas " + std::to_string(attach.pt_id) + ") on " + name)
		.value();
	return Device(std::move(fd), name, iommufd);
}

bool group_available(const std::string &sysfs_path)
{
	std::error_code ec;
	if (!std::filesystem::exists("/dev/vfio/vfio", ec))
		return false;
	auto target = std::filesystem::read_symlink(sysfs_path + "/iommu_group", ec);
	if (ec)
		return false;
	return std::filesystem::exists("/dev/vfio/" + target.filename().string(), ec);
}

} // namespace

Device Device::open_sysfs(const std::string &sysfs_path, Backend backend)
{
	std::string name = std::filesystem::path(sysfs_path).filename().string();
	if (backend == Backend::Auto)
		backend = group_available(sysfs_path) || !vfio_cdev_of(sysfs_path) ? Backend::Group : Backend::Cdev;
	Device d = backend == Backend::Cdev ? open_cdev(sysfs_path, name) : open_group(sysfs_path, name);
	d.backend_ = backend;
	return d;
}

Device::Device(Device &&other) noexcept
	: fd_(std::move(other.fd_)), label_(std::move(other.label_)), keepalive_(std::move(other.keepalive_)),
	  backend_(other.backend_), regions_(std::move(other.regions_)), last_state_(other.last_state_.load())
{
}

Device &Device::operator=(Device &&other) noexcept
{
	if (this != &other) {
		fd_ = std::move(other.fd_);
		label_ = std::move(other.label_);
		keepalive_ = std::move(other.keepalive_);
		backend_ = other.backend_;
		regions_ = std::move(other.regions_);
		last_state_ = other.last_state_.load();
	}
	return *this;
}

void Device::note_state(std::optional<State> s)
{
	last_state_ = s ? static_cast<int>(*s) : -1;
}

std::optional<State> Device::last_state() const
{
	int v = last_state_.load();
	if (v < 0)
		return std::nullopt;
	return static_cast<State>(v);
}

std::string Device::ctx(const std::string &call) const { return call + " on " + label_; }

std::string Device::known_state() const
{
	auto s = last_state();
	return s ? state_name(*s) : std::string("?");
}

struct vfio_device_info Device::info() const
{
	struct vfio_device_info info = {};
	info.argsz = sizeof(info);
	ioctl(fd(), VFIO_DEVICE_GET_INFO, &info, ctx("VFIO_DEVICE_GET_INFO")).value();
	return info;
}

Result<RegionInfo> Device::try_region_info(std::uint32_t index)
{
	if (auto it = regions_.find(index); it != regions_.end())
		return it->second;
	struct vfio_region_info ri = {};
	ri.argsz = sizeof(ri);
	ri.index = index;
	auto r = ioctl(fd(), VFIO_DEVICE_GET_REGION_INFO, &ri,
		       ctx("VFIO_DEVICE_GET_REGION_INFO(index " + std::to_string(index) + ")"));
	if (!r)
		return Result<RegionInfo>::failure(r.err(), r.context());
	RegionInfo info{index, ri.flags, ri.size, ri.offset};
	regions_[index] = info;
	return info;
}

Result<std::size_t> Device::try_region_read(std::uint32_t index, std::uint64_t off, std::span<std::uint8_t> buf)
{
	auto ri = try_region_info(index);
	if (!ri)
		return Result<std::size_t>::failure(ri.err(), ri.context());
	ssize_t n = ::pread(fd_.get(), buf.data(), buf.size(), static_cast<off_t>(ri->offset + off));
	if (n < 0)
		return Result<std::size_t>::failure(
			errno, ctx("pread(region " + std::to_string(index) + " +" + std::to_string(off) + ", " +
				   std::to_string(buf.size()) + ") in " + known_state()));
	return static_cast<std::size_t>(n);
}

Result<std::size_t> Device::try_region_write(std::uint32_t index, std::uint64_t off,
					     std::span<const std::uint8_t> buf)
{
	auto ri = try_region_info(index);
	if (!ri)
		return Result<std::size_t>::failure(ri.err(), ri.context());
	ssize_t n = ::pwrite(fd_.get(), buf.data(), buf.size(), static_cast<off_t>(ri->offset + off));
	if (n < 0)
		return Result<std::size_t>::failure(
			errno, ctx("pwrite(region " + std::to_string(index) + " +" + std::to_string(off) + ", " +
				   std::to_string(buf.size()) + ") in " + known_state()));
	return static_cast<std::size_t>(n);
}

void Device::region_read(std::uint32_t index, std::uint64_t off, std::span<std::uint8_t> buf)
{
	std::size_t n = try_region_read(index, off, buf).value();
	if (n != buf.size())
		throw_error(EIO, ctx("short pread(region " + std::to_string(index) + ")"));
}

void Device::region_write(std::uint32_t index, std::uint64_t off, std::span<const std::uint8_t> buf)
{
	std::size_t n = try_region_write(index, off, buf).value();
	if (n != buf.size())
		throw_error(EIO, ctx("short pwrite(region " + std::to_string(index) + ")"));
}

Result<std::uint32_t> Device::try_read32(std::uint32_t index, std::uint64_t off)
{
	std::uint8_t b[4];
	auto r = try_region_read(index, off, b);
	if (!r)
		return Result<std::uint32_t>::failure(r.err(), r.context());
	if (*r != 4)
		return Result<std::uint32_t>::failure(EIO, ctx("short 4-byte pread"));
	return std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16 | std::uint32_t{b[3]} << 24;
}

Status Device::try_write32(std::uint32_t index, std::uint64_t off, std::uint32_t v)
{
	std::uint8_t b[4] = {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
			     static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 24)};
	auto r = try_region_write(index, off, b);
	if (!r)
		return Status::failure(r.err(), r.context());
	if (*r != 4)
		return Status::failure(EIO, ctx("short 4-byte pwrite"));
	return Unit{};
}

Status Device::try_reset()
{
	auto r = ioctl_noarg(fd(), VFIO_DEVICE_RESET, ctx("VFIO_DEVICE_RESET from " + known_state()));
	if (!r) {
		note_state(std::nullopt);
		return Status::failure(r.err(), r.context());
	}
	note_state(State::Running);
	return Unit{};
}

Status Device::feature(std::uint32_t flags, std::span<std::uint8_t> data, const std::string &what)
{
	// struct vfio_device_feature { argsz; flags; data[] }, 8-byte aligned.
	std::vector<std::uint64_t> buf(1 + (data.size() + 7) / 8, 0);
	auto *hdr = reinterpret_cast<struct vfio_device_feature *>(buf.data());
	hdr->argsz = static_cast<std::uint32_t>(sizeof(*hdr) + data.size());
	hdr->flags = flags;
	if (!data.empty())
		std::memcpy(hdr->data, data.data(), data.size());
	std::string context = ctx("VFIO_DEVICE_FEATURE(" + feature_op(flags) + " " +
				  feature_name(flags & VFIO_DEVICE_FEATURE_MASK) + (what.empty() ? "" : " ") +
				  what + ")");
	auto r = ioctl(fd(), VFIO_DEVICE_FEATURE, hdr, context);
	// The kernel copies the payload back on some failures too (MIG_DEVICE_STATE).
	if (!data.empty())
		std::memcpy(data.data(), hdr->data, data.size());
	if (!r)
		return Status::failure(r.err(), r.context());
	return Unit{};
}

int Device::probe_feature(std::uint32_t feat, std::uint32_t get_set)
{
	auto r = feature(VFIO_DEVICE_FEATURE_PROBE | get_set | feat, {}, "");
	return r.err();
}

Result<std::uint64_t> Device::try_migration_flags()
{
	uapi::migration m = {};
	auto r = feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
			 {reinterpret_cast<std::uint8_t *>(&m), sizeof(m)}, "");
	if (!r)
		return Result<std::uint64_t>::failure(r.err(), r.context());
	return static_cast<std::uint64_t>(m.flags);
}

MigrationCaps Device::migration_caps()
{
	MigrationCaps c;
	auto f = try_migration_flags();
	if (!f) {
		c.migration_errno = f.err();
		return c;
	}
	c.flags = *f;
	c.data_size = probe_feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_GET) == 0;
	c.precopy_info_v2 = probe_feature(VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, VFIO_DEVICE_FEATURE_SET) == 0;
	c.dma_logging = probe_feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET) == 0;
	return c;
}

Result<State> Device::try_get_state()
{
	uapi::mig_state m = {};
	m.data_fd = -1;
	auto r = feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			 {reinterpret_cast<std::uint8_t *>(&m), sizeof(m)}, "");
	if (!r)
		return Result<State>::failure(r.err(), r.context());
	if (m.device_state >= kNumStates)
		return Result<State>::failure(ERANGE, ctx("GET MIG_DEVICE_STATE returned undefined state " +
							   std::to_string(m.device_state)));
	note_state(static_cast<State>(m.device_state));
	return static_cast<State>(m.device_state);
}

Result<MigrationSession> Device::try_set_state(std::uint32_t to)
{
	uapi::mig_state m = {};
	m.device_state = to;
	m.data_fd = -1;
	if (!last_state())
		(void)try_get_state(); // only to name the arc in errors
	std::string from = known_state();
	std::string arc = from + "->" + state_name(to);
	auto r = feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			 {reinterpret_cast<std::uint8_t *>(&m), sizeof(m)}, arc);
	State from_state = last_state().value_or(State::Error);
	if (!r) {
		note_state(std::nullopt); // original, a state on the path, or ERROR
		return Result<MigrationSession>::failure(r.err(), r.context());
	}
	MigrationSession s;
	s.from = from_state;
	s.to = static_cast<State>(to);
	s.raw_data_fd = m.data_fd;
	if (m.data_fd >= 0) {
		std::string kind = to == static_cast<std::uint32_t>(State::Resuming) ? "resuming" : "saving";
		s.data = DataFd(Fd(m.data_fd), label_, kind + " fd of " + label_ + " (" + arc + ")");
	}
	note_state(s.to);
	return s;
}

Status Device::try_precopy_v2_opt_in()
{
	return feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, {}, "");
}

Result<std::uint64_t> Device::try_stop_copy_size()
{
	uapi::mig_data_size m = {};
	auto r = feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
			 {reinterpret_cast<std::uint8_t *>(&m), sizeof(m)}, "in " + known_state());
	if (!r)
		return Result<std::uint64_t>::failure(r.err(), r.context());
	return static_cast<std::uint64_t>(m.stop_copy_length);
}

} // namespace vfiomig
