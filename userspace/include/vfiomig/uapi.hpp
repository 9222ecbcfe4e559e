// The VFIO uAPI as libvfiomig uses it: the system <linux/vfio.h> plus what
// older system headers lack (PRE_COPY, MIG_DATA_SIZE, precopy info, and the
// 7.1 PRECOPY_INFOv2 opt-in).  Values and layouts follow the kernel's
// include/uapi/linux/vfio.h.
#pragma once

#include <cstdint>
#include <linux/vfio.h>

#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY (1 << 2)
#endif
#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif
#ifndef VFIO_MIG_GET_PRECOPY_INFO
#define VFIO_MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)
#endif
#ifndef VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2
#define VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 12
#endif
#ifndef VFIO_PRECOPY_INFO_REINIT
#define VFIO_PRECOPY_INFO_REINIT (1u << 0)
#endif

// The device cdev + iommufd path (Linux 6.6+); the system headers of an
// older distribution (Debian 12: 6.1) lack both, and <linux/iommufd.h>.
#ifndef VFIO_DEVICE_BIND_IOMMUFD
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif
#ifndef VFIO_DEVICE_ATTACH_IOMMUFD_PT
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#endif
#define VFIOMIG_IOMMUFD_TYPE ';'
#define VFIOMIG_IOMMU_IOAS_ALLOC _IO(VFIOMIG_IOMMUFD_TYPE, 0x81)

namespace vfiomig::uapi {

/// struct vfio_device_bind_iommufd.
struct bind_iommufd {
	std::uint32_t argsz;
	std::uint32_t flags;
	std::int32_t iommufd;
	std::uint32_t out_devid;
};
static_assert(sizeof(bind_iommufd) == 16);

/// struct vfio_device_attach_iommufd_pt (6.12 layout, without pasid).
struct attach_iommufd_pt {
	std::uint32_t argsz;
	std::uint32_t flags;
	std::uint32_t pt_id;
};
static_assert(sizeof(attach_iommufd_pt) == 12);

/// struct iommu_ioas_alloc.
struct ioas_alloc {
	std::uint32_t size;
	std::uint32_t flags;
	std::uint32_t out_ioas_id;
};
static_assert(sizeof(ioas_alloc) == 12);


/// struct vfio_precopy_info (Linux 6.2+), declared here so that older
/// system headers work.
struct precopy_info {
	std::uint32_t argsz;
	std::uint32_t flags;
	alignas(8) std::uint64_t initial_bytes;
	alignas(8) std::uint64_t dirty_bytes;
};
static_assert(sizeof(precopy_info) == 24);

/// struct vfio_device_feature_mig_data_size.
struct mig_data_size {
	alignas(8) std::uint64_t stop_copy_length;
};
static_assert(sizeof(mig_data_size) == 8);

/// struct vfio_device_feature_mig_state.
struct mig_state {
	std::uint32_t device_state;
	std::int32_t data_fd;
};
static_assert(sizeof(mig_state) == 8);

/// struct vfio_device_feature_migration.
struct migration {
	alignas(8) std::uint64_t flags;
};
static_assert(sizeof(migration) == 8);

} // namespace vfiomig::uapi
