/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio_mig_emu: shims for the kernels we build against.  The HAVE_ defines
 * come from the header probes in Kbuild.
 */
#ifndef VME_COMPAT_H
#define VME_COMPAT_H

#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/vfio.h>
#include <net/genetlink.h>

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
 * that the module keeps its own flag (vme_device.precopy_v2).  Either is
 * read at every use (the core sets it without the driver's locks), as
 * vfio_check_precopy_ioctl() does.
 */
#if defined(HAVE_VFIO_DEVICE_PRECOPY_INFO_V2) || \
	defined(HAVE_VFIO_DEVICE_PRECOPY_INFO_FLAGS_FIX)
#define VME_CORE_TAKES_PRECOPY_V2	true
#else
#define VME_CORE_TAKES_PRECOPY_V2	false
#endif

static inline bool vme_core_precopy_v2(struct vfio_device *vdev)
{
#if defined(HAVE_VFIO_DEVICE_PRECOPY_INFO_V2)
	return READ_ONCE(vdev->precopy_info_v2);
#elif defined(HAVE_VFIO_DEVICE_PRECOPY_INFO_FLAGS_FIX)
	return READ_ONCE(vdev->precopy_info_flags_fix);
#else
	return false;
#endif
}

/*
 * "eventfd: simplify eventfd_signal()" (v6.8) dropped the count argument;
 * before it every caller passed 1.
 */
#ifdef HAVE_EVENTFD_SIGNAL_NO_COUNT
#define vme_eventfd_signal(ctx) eventfd_signal(ctx)
#else
#define vme_eventfd_signal(ctx) eventfd_signal((ctx), 1)
#endif

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

/*
 * "vfio: Extend the device migration protocol with PRE_COPY" and
 * "vfio: Add an option to get migration data size" (v6.2).  Before them
 * the uAPI has neither and the core's vfio_mig_get_next_state() knows only
 * the five v1 states, so the module offers only the profiles without
 * PRE_COPY there (vme_core_has_pre_copy()); the constants are still
 * defined so the code keeps one shape.  The core passes
 * VFIO_DEVICE_FEATURE_MIG_DATA_SIZE through to device_feature, where the
 * module answers it itself (vme_feature_mig_data_size()).
 */
#ifdef HAVE_VFIO_MIGRATION_PRE_COPY
static inline bool vme_core_has_pre_copy(void)
{
	return true;
}
#else
#define VFIO_MIGRATION_PRE_COPY (1 << 2)
#define VFIO_DEVICE_STATE_PRE_COPY 6
#define VFIO_DEVICE_STATE_PRE_COPY_P2P 7

struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};

#define VFIO_MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)

static inline bool vme_core_has_pre_copy(void)
{
	return false;
}
#endif

#ifndef HAVE_VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
struct vfio_device_feature_mig_data_size {
	__aligned_u64 stop_copy_length;
};

#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif

/*
 * "driver core: class: remove module * from class_create()" (v6.4).
 */
#ifdef HAVE_CLASS_CREATE_NAME_ONLY
#define vme_class_create(name) class_create(name)
#else
#define vme_class_create(name) class_create(THIS_MODULE, name)
#endif

/*
 * Policies point at const range tables since "netlink: make range
 * pointers in policies const" (v6.3); before, the tables stay writable.
 */
#ifdef HAVE_NLA_CONST_RANGE
#define VME_NLA_RANGE_CONST const
#else
#define VME_NLA_RANGE_CONST
#endif

/*
 * "netlink: add support for formatted extack messages" (v6.3).  Before
 * it an extack message is a fixed string: the format itself is reported.
 */
#ifndef NL_SET_ERR_MSG_FMT
#define NL_SET_ERR_MSG_FMT(extack, fmt, ...) NL_SET_ERR_MSG(extack, fmt)
#define NL_SET_ERR_MSG_ATTR_FMT(extack, attr, fmt, ...) \
	NL_SET_ERR_MSG_ATTR(extack, attr, fmt)
#endif

/*
 * genl_info_dump() (v6.6, the genetlink dump rework) put a genl_info
 * in the dump context.  Before it, the dump's attributes and extack are
 * gathered into @buf.
 */
static inline struct genl_info *vme_genl_info_dump(struct netlink_callback *cb,
						   struct genl_info *buf)
{
#ifdef HAVE_GENL_INFO_DUMP
	return (struct genl_info *)genl_info_dump(cb);
#else
	memset(buf, 0, sizeof(*buf));
	buf->attrs = genl_dumpit_info(cb)->attrs;
	buf->extack = cb->extack;
	buf->snd_portid = NETLINK_CB(cb->skb).portid;
	return buf;
#endif
}

/*
 * "genetlink: add CAP_NET_ADMIN test for multicast bind" (v6.7): a group
 * flagged GENL_MCAST_CAP_NET_ADMIN can be joined only with CAP_NET_ADMIN
 * in the netns's user namespace.  Before it the family's mcast_bind
 * callback, run in the joining process's context, does the same check.
 */
#ifdef HAVE_GENL_MCAST_CAP
#define VME_GENL_MCAST_CAP_NET_ADMIN GENL_MCAST_CAP_NET_ADMIN
#else
#include <linux/capability.h>
#include <net/net_namespace.h>

#define VME_GENL_MCAST_CAP_NET_ADMIN 0

static inline int vme_genl_mcast_bind(struct net *net, int group)
{
	return ns_capable(net->user_ns, CAP_NET_ADMIN) ? 0 : -EPERM;
}
#endif

#endif /* VME_COMPAT_H */
