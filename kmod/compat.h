/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio_mig_emu: shims for the kernels we build against.  The HAVE_ defines
 * come from the header probes in Kbuild.
 */
#ifndef VME_COMPAT_H
#define VME_COMPAT_H

#include <linux/fs.h>
#include <linux/vfio.h>

/*
 * VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 and VFIO_PRECOPY_INFO_REINIT
 * ("vfio: Add support for VFIO_PRECOPY_INFO_REINIT", upstream from Linux
 * 7.1).  Older vfio cores pass feature 12 through to the driver's
 * device_feature op, so the module implements the opt-in itself there.
 */
#ifndef HAVE_VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOV2
#define VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 12
#endif

#ifndef HAVE_VFIO_PRECOPY_INFO_REINIT
#define VFIO_PRECOPY_INFO_REINIT (1 << 0)
#endif

/*
 * "vfio: Add support for VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2" (7.1):
 * the core takes the opt-in itself and records it per device.  Before
 * that the module keeps its own flag (vme_device.precopy_v2).
 */
static inline bool vme_core_precopy_v2(struct vfio_device *vdev)
{
#if defined(HAVE_VFIO_DEVICE_PRECOPY_INFO_V2)
	return vdev->precopy_info_v2;
#elif defined(HAVE_VFIO_DEVICE_PRECOPY_INFO_FLAGS_FIX)
	return vdev->precopy_info_flags_fix;
#else
	return false;
#endif
}

/*
 * "fs: remove no_llseek" (v6.12) dropped the helper: a file marked by
 * stream_open() (FMODE_STREAM, no FMODE_LSEEK) refuses lseek with a NULL
 * ->llseek.  Older kernels still want no_llseek spelled out.
 */
#ifdef HAVE_NO_LLSEEK
#define VME_NO_LLSEEK no_llseek
#else
#define VME_NO_LLSEEK NULL
#endif

#endif /* VME_COMPAT_H */
