// VFIO objects: container, group, device, and the migration data fd.
//
// Two ways to open a device, chosen by Backend:
// - group: <sysfs>/iommu_group -> /dev/vfio/N -> container with
//   VFIO_TYPE1v2_IOMMU -> VFIO_GROUP_GET_DEVICE_FD(name);
// - cdev: <sysfs>/vfio-dev/vfioX -> /dev/vfio/devices/vfioX ->
//   VFIO_DEVICE_BIND_IOMMUFD(/dev/iommu) -> IOMMU_IOAS_ALLOC ->
//   VFIO_DEVICE_ATTACH_IOMMUFD_PT(ioas).
// Device only needs an open device fd, a label and something keeping the
// group/container or iommufd alive, so both end in Device's constructor.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "vfiomig/fd.hpp"
#include "vfiomig/state.hpp"
#include "vfiomig/uapi.hpp"

namespace vfiomig {

/// /dev/vfio/vfio.
class Container {
public:
	/// Opens /dev/vfio/vfio and checks the API version and Type1v2 support.
	static std::shared_ptr<Container> open();
	FdView fd() const { return fd_.view(); }
	/// VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU); needs a group attached first.
	void set_iommu_type1v2();
	bool iommu_set() const { return iommu_set_; }

private:
	Fd fd_;
	bool iommu_set_ = false;
};

/// /dev/vfio/N.
class Group {
public:
	/// Opens group N, checks it is viable.
	static std::shared_ptr<Group> open(int group_id);
	/// VFIO_GROUP_SET_CONTAINER (and the container's IOMMU if not yet set).
	void attach(std::shared_ptr<Container> container);
	/// VFIO_GROUP_GET_DEVICE_FD(name).
	Fd get_device_fd(const std::string &name) const;
	int id() const { return id_; }
	FdView fd() const { return fd_.view(); }

private:
	Fd fd_;
	int id_ = -1;
	std::shared_ptr<Container> container_;
};

/// /dev/iommu with one IOAS (the cdev backend's address space).
class Iommufd {
public:
	/// Opens /dev/iommu and allocates an IOAS (IOMMU_IOAS_ALLOC).
	static std::shared_ptr<Iommufd> open();
	FdView fd() const { return fd_.view(); }
	std::uint32_t ioas_id() const { return ioas_id_; }

private:
	Fd fd_;
	std::uint32_t ioas_id_ = 0;
};

/// How a device is opened: group + container, device cdev + iommufd, or
/// whichever the kernel and the device offer (group first: it is what
/// every kernel with VFIO has, and what the suite was written against).
enum class Backend { Auto, Group, Cdev };
/// "auto", "group", "cdev".
std::string backend_name(Backend b);
std::optional<Backend> parse_backend(std::string_view name);

/// What a device offers for migration, as the uAPI lets userspace find
/// out: the MIGRATION flags and a PROBE of each optional feature.
struct MigrationCaps {
	std::uint64_t flags = 0;	 ///< VFIO_MIGRATION_*; 0 when not migratable
	int migration_errno = 0;	 ///< GET MIGRATION's errno (ENOTTY: no migration)
	bool data_size = false;		 ///< GET MIG_DATA_SIZE
	bool precopy_info_v2 = false;	 ///< SET MIG_PRECOPY_INFOv2 (REINIT opt-in)
	bool dma_logging = false;	 ///< SET DMA_LOGGING_START (device dirty tracking)
	/// "flags STOP_COPY|P2P|PRE_COPY, MIG_DATA_SIZE, no PRECOPY_INFOv2, no DMA logging".
	std::string describe() const;
};

/// VFIO_MIG_GET_PRECOPY_INFO output.
struct PrecopyInfo {
	std::uint32_t flags = 0;
	std::uint64_t initial_bytes = 0;
	std::uint64_t dirty_bytes = 0;
};

/// A migration data fd (saving or resuming). Read/write return the byte
/// count or the errno so tests can check exact errors.
class DataFd {
public:
	DataFd() = default;
	DataFd(Fd fd, std::string label, std::string session);
	bool valid() const { return fd_.valid(); }
	FdView fd() const { return fd_.view(); }
	/// One read(2); 0 is end of stream.
	Result<std::size_t> read(std::span<std::uint8_t> buf);
	/// One write(2); may be partial.
	Result<std::size_t> write(std::span<const std::uint8_t> buf);
	/// VFIO_MIG_GET_PRECOPY_INFO with `flags_in` in the flags field.
	Result<PrecopyInfo> precopy_info(std::uint32_t flags_in = 0);
	/// Closes the fd.
	void close() { fd_.reset(); }
	const std::string &describe() const { return session_; }

private:
	Fd fd_;
	std::string label_;
	std::string session_; ///< "saving session of <label> from RUNNING->PRE_COPY"
};

/// What SET_STATE returned: the state reached and the data fd if any.
struct MigrationSession {
	State from = State::Error;
	State to = State::Error;
	DataFd data; ///< invalid when the kernel returned data_fd = -1
	int raw_data_fd = -1; ///< the data_fd field as returned
	bool has_data() const { return data.valid(); }
};

/// A region's index, offset and size (VFIO_DEVICE_GET_REGION_INFO).
struct RegionInfo {
	std::uint32_t index = 0;
	std::uint32_t flags = 0;
	std::uint64_t size = 0;
	std::uint64_t offset = 0;
};

/// An open VFIO device. The ioctl wrappers (state, reset, features) may be
/// called from several threads at once; region accessors fill a cache and
/// must not race with each other for the first access to a region.
class Device {
public:
	/// Takes an open device fd; `label` names it in errors (mdev uuid).
	/// `keepalive` holds the group/container (or iommufd) it came from.
	Device(Fd fd, std::string label, std::shared_ptr<void> keepalive = {});
	Device(Device &&other) noexcept;
	Device &operator=(Device &&other) noexcept;

	/// Opens the device at a sysfs path (/sys/bus/mdev/devices/<uuid> or
	/// /sys/bus/pci/devices/<bdf>) through `backend` (see the top of this
	/// file), each device with its own container or iommufd. Auto takes
	/// the group path when the device has an IOMMU group whose /dev/vfio/N
	/// and /dev/vfio/vfio exist, else the cdev path.
	static Device open_sysfs(const std::string &sysfs_path, Backend backend = Backend::Auto);

	const std::string &label() const { return label_; }
	/// The backend the device was opened through (Auto when constructed
	/// from a bare fd).
	Backend backend() const { return backend_; }
	FdView fd() const { return fd_.view(); }

	/// VFIO_DEVICE_GET_INFO.
	struct vfio_device_info info() const;
	/// VFIO_DEVICE_GET_REGION_INFO (cached).
	Result<RegionInfo> try_region_info(std::uint32_t index);
	RegionInfo region_info(std::uint32_t index) { return try_region_info(index).value(); }
	/// pread/pwrite within a region; returns bytes transferred or errno.
	Result<std::size_t> try_region_read(std::uint32_t index, std::uint64_t off,
					    std::span<std::uint8_t> buf);
	Result<std::size_t> try_region_write(std::uint32_t index, std::uint64_t off,
					     std::span<const std::uint8_t> buf);
	void region_read(std::uint32_t index, std::uint64_t off, std::span<std::uint8_t> buf);
	void region_write(std::uint32_t index, std::uint64_t off, std::span<const std::uint8_t> buf);
	Result<std::uint32_t> try_read32(std::uint32_t index, std::uint64_t off);
	Status try_write32(std::uint32_t index, std::uint64_t off, std::uint32_t value);
	std::uint32_t read32(std::uint32_t index, std::uint64_t off) { return try_read32(index, off).value(); }
	void write32(std::uint32_t index, std::uint64_t off, std::uint32_t v) { try_write32(index, off, v).value(); }

	/// VFIO_DEVICE_RESET (the only way out of ERROR; lands in RUNNING).
	Status try_reset();
	void reset() { try_reset().value(); }

	/// Raw VFIO_DEVICE_FEATURE: `flags` are GET/SET/PROBE | feature index,
	/// `data` is the feature payload (in/out).
	Status feature(std::uint32_t flags, std::span<std::uint8_t> data, const std::string &what);
	/// PROBE for `feature` with GET and/or SET; returns the errno (0 = supported).
	int probe_feature(std::uint32_t feature, std::uint32_t get_set);

	/// VFIO_DEVICE_FEATURE_MIGRATION flags (VFIO_MIGRATION_*).
	Result<std::uint64_t> try_migration_flags();
	std::uint64_t migration_flags() { return try_migration_flags().value(); }
	/// GET MIG_DEVICE_STATE.
	Result<State> try_get_state();
	State get_state() { return try_get_state().value(); }
	/// SET MIG_DEVICE_STATE; `to` is raw so undefined values can be sent.
	Result<MigrationSession> try_set_state(std::uint32_t to);
	Result<MigrationSession> try_set_state(State to) { return try_set_state(static_cast<std::uint32_t>(to)); }
	MigrationSession set_state(State to) { return try_set_state(to).value(); }
	/// SET VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (no payload): opts in to
	/// VFIO_MIG_GET_PRECOPY_INFO's flags being an output (REINIT). Lasts
	/// until the device fd is closed; applies to sessions started after it.
	Status try_precopy_v2_opt_in();
	/// GET MIG_DATA_SIZE: estimated bytes STOP_COPY will produce.
	Result<std::uint64_t> try_stop_copy_size();
	std::uint64_t stop_copy_size() { return try_stop_copy_size().value(); }
	/// MIGRATION flags and PROBEs of the optional migration features.
	MigrationCaps migration_caps();
	/// The state this object last observed (for error messages).
	std::string known_state() const;

private:
	std::string ctx(const std::string &call) const;

	Fd fd_;
	std::string label_;
	std::shared_ptr<void> keepalive_;
	Backend backend_ = Backend::Auto;
	std::map<std::uint32_t, RegionInfo> regions_;
	void note_state(std::optional<State> s);
	std::optional<State> last_state() const;
	std::atomic<int> last_state_{-1}; ///< -1: unknown

};

/// The IOMMU group number of a sysfs device (readlink <path>/iommu_group).
int iommu_group_of(const std::string &sysfs_path);
/// The device's cdev, /dev/vfio/devices/vfioX, from <sysfs>/vfio-dev/vfioX;
/// nullopt when the kernel has no VFIO_DEVICE_CDEV or the device no cdev.
std::optional<std::string> vfio_cdev_of(const std::string &sysfs_path);

} // namespace vfiomig
