// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_mig_emu: an emulated, migratable vfio-pci compatible device with no
 * hardware behind it.  This file holds the module init/exit, the mdev
 * parent (a virtual device, /sys/devices/virtual/vfio_mig_emu/vfio_mig_emu)
 * with one mdev type per profile, and the vfio_device_ops.
 */
#include <linux/device.h>
#include <linux/eventfd.h>
#include <linux/mdev.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>
#include <net/genetlink.h>

#include "vme.h"

atomic_t vme_live_devices = ATOMIC_INIT(0);
atomic_t vme_live_files = ATOMIC_INIT(0);
atomic_t vme_live_buffers = ATOMIC_INIT(0);
atomic_t vme_live_pages = ATOMIC_INIT(0);
atomic_t vme_live_eventfds = ATOMIC_INIT(0);

/* vme_devices_lock protects vme_devices: the registered instances. */
DEFINE_MUTEX(vme_devices_lock);
LIST_HEAD(vme_devices);

/* Instances of all types together. */
#define VME_MAX_INSTANCES	64

struct vme_type {
	struct mdev_type type;
	enum vfio_mig_emu_profile profile;
	u32 migration_flags;
};

static struct vme_type vme_types[VFIO_MIG_EMU_PROFILE_COUNT] = {
	[VFIO_MIG_EMU_PROFILE_FULL] = {
		.type.sysfs_name = "full",
		.type.pretty_name = "vfio_mig_emu STOP_COPY|P2P|PRE_COPY",
		.profile = VFIO_MIG_EMU_PROFILE_FULL,
		.migration_flags = VFIO_MIGRATION_STOP_COPY |
				   VFIO_MIGRATION_P2P |
				   VFIO_MIGRATION_PRE_COPY,
	},
	[VFIO_MIG_EMU_PROFILE_STOPCOPY] = {
		.type.sysfs_name = "stopcopy",
		.type.pretty_name = "vfio_mig_emu STOP_COPY",
		.profile = VFIO_MIG_EMU_PROFILE_STOPCOPY,
		.migration_flags = VFIO_MIGRATION_STOP_COPY,
	},
	[VFIO_MIG_EMU_PROFILE_P2P] = {
		.type.sysfs_name = "p2p",
		.type.pretty_name = "vfio_mig_emu STOP_COPY|P2P",
		.profile = VFIO_MIG_EMU_PROFILE_P2P,
		.migration_flags = VFIO_MIGRATION_STOP_COPY |
				   VFIO_MIGRATION_P2P,
	},
	[VFIO_MIG_EMU_PROFILE_PRECOPY] = {
		.type.sysfs_name = "precopy",
		.type.pretty_name = "vfio_mig_emu STOP_COPY|PRE_COPY",
		.profile = VFIO_MIG_EMU_PROFILE_PRECOPY,
		.migration_flags = VFIO_MIGRATION_STOP_COPY |
				   VFIO_MIGRATION_PRE_COPY,
	},
};

static struct mdev_type *vme_mdev_types[VFIO_MIG_EMU_PROFILE_COUNT] = {
	&vme_types[VFIO_MIG_EMU_PROFILE_FULL].type,
	&vme_types[VFIO_MIG_EMU_PROFILE_STOPCOPY].type,
	&vme_types[VFIO_MIG_EMU_PROFILE_P2P].type,
	&vme_types[VFIO_MIG_EMU_PROFILE_PRECOPY].type,
};

/*
 * Moves the profiles the vfio core can drive to the front of
 * vme_mdev_types and returns their number: all of them, or those without
 * PRE_COPY where the core's FSM lacks it (compat.h).
 */
static unsigned int vme_offer_types(void)
{
	unsigned int i, n = 0;

	for (i = 0; i < ARRAY_SIZE(vme_mdev_types); i++) {
		struct vme_type *t = container_of(vme_mdev_types[i],
						  struct vme_type, type);

		if ((t->migration_flags & VFIO_MIGRATION_PRE_COPY) &&
		    !vme_core_has_pre_copy())
			continue;
		vme_mdev_types[n++] = vme_mdev_types[i];
	}
	return n;
}

static struct vme_parent {
	struct class *class;
	struct device dev;
	struct mdev_parent parent;
} vme_parent;

/* ---- vfio_device_ops -------------------------------------------------- */

static int vme_init_dev(struct vfio_device *vdev)
{
	struct vme_device *vme = to_vme(vdev);
	struct mdev_device *mdev = to_mdev_device(vdev->dev);
	struct vme_type *type = container_of(mdev->type, struct vme_type, type);
	int ret;

	ret = vme_device_init(vme, type->profile,
			      VFIO_MIG_EMU_DEFAULT_MEM_SIZE);
	if (ret)
		return ret;

	mutex_init(&vme->state_mutex);
	spin_lock_init(&vme->reset_lock);
	mutex_init(&vme->event_lock);
	mutex_init(&vme->irq_lock);
	vme_faults_init(vme);
	INIT_DELAYED_WORK(&vme->dirty_work, vme_dirty_work_fn);
	INIT_LIST_HEAD(&vme->node);
	snprintf(vme->uuid, sizeof(vme->uuid), "%pUl", &mdev->uuid);
	vme->knobs.reinit_policy = VFIO_MIG_EMU_REINIT_FOLD;
	vme->mig_state = VFIO_DEVICE_STATE_RUNNING;
	vdev->migration_flags = type->migration_flags;
	vdev->mig_ops = &vme_migration_ops;
	/*
	 * vdev->dev, the mdev, must live as long as the vfio_device: a
	 * netlink command that looked the device up holds a reference and
	 * logs with dev_info(vdev->dev) (vme_quirks_log()) while the
	 * instance may be removed, and the mdev core frees the mdev on
	 * remove.  Dropped in vme_release_dev().
	 */
	get_device(vdev->dev);
	atomic_inc(&vme_live_devices);
	return 0;
}

static void vme_release_dev(struct vfio_device *vdev)
{
	struct vme_device *vme = to_vme(vdev);

	cancel_delayed_work_sync(&vme->dirty_work);
	vme_faults_fini(vme);
	vme_device_fini(vme);
	mutex_destroy(&vme->irq_lock);
	mutex_destroy(&vme->event_lock);
	mutex_destroy(&vme->state_mutex);
	put_device(vdev->dev);
	atomic_dec(&vme_live_devices);
}

static int vme_open_device(struct vfio_device *vdev)
{
	struct vme_device *vme = to_vme(vdev);
	struct vme_fault_act act;

	if (vme_fault_check(vme, VFIO_MIG_EMU_SITE_OPEN, 0, 0, &act))
		return act.err;
	if (mutex_lock_killable(&vme->state_mutex))
		return -EINTR;
	vme_open_locked(vme);
	vme_state_mutex_unlock(vme);
	return 0;
}

/* ---- interrupts: the ERR and REQ eventfds ---------------------------- */

/*
 * Vectors of IRQ index @index: one each for ERR and REQ, as vfio-pci
 * offers them (QEMU enables error recovery and device requests on them);
 * the emulated device raises no INTx, MSI or MSI-X.
 */
static u32 vme_irq_count(u32 index)
{
	return index == VFIO_PCI_ERR_IRQ_INDEX ||
	       index == VFIO_PCI_REQ_IRQ_INDEX;
}

/* Installs @ctx (NULL: none) as @trigger, dropping the one it replaces. */
static void vme_trigger_replace_locked(struct vme_device *vme,
				       struct eventfd_ctx **trigger,
				       struct eventfd_ctx *ctx)
{
	lockdep_assert_held(&vme->irq_lock);
	if (*trigger) {
		eventfd_ctx_put(*trigger);
		atomic_dec(&vme_live_eventfds);
	}
	*trigger = ctx;
	if (ctx)
		atomic_inc(&vme_live_eventfds);
}

/*
 * ACTION_TRIGGER on ERR or REQ, as vfio-pci's
 * vfio_pci_set_ctx_trigger_single(): DATA_NONE signals the trigger
 * (count 1, loopback) or tears it down (count 0), EINVAL when none is
 * registered; DATA_BOOL signals it when the byte is set; DATA_EVENTFD
 * registers the eventfd, or unregisters with fd -1.
 */
static int vme_set_trigger_locked(struct vme_device *vme, u32 index,
				  u32 count, u32 flags, const void *data)
{
	struct eventfd_ctx **trigger = index == VFIO_PCI_ERR_IRQ_INDEX ?
				       &vme->err_trigger : &vme->req_trigger;
	struct eventfd_ctx *ctx;
	s32 fd;

	lockdep_assert_held(&vme->irq_lock);
	switch (flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
	case VFIO_IRQ_SET_DATA_NONE:
		if (!*trigger)
			return -EINVAL;
		if (count)
			vme_eventfd_signal(*trigger);
		else
			vme_trigger_replace_locked(vme, trigger, NULL);
		return 0;
	case VFIO_IRQ_SET_DATA_BOOL:
		if (!count)
			return -EINVAL;
		if (*(const u8 *)data && *trigger)
			vme_eventfd_signal(*trigger);
		return 0;
	case VFIO_IRQ_SET_DATA_EVENTFD:
		if (!count)
			return -EINVAL;
		fd = *(const s32 *)data;
		if (fd == -1) {
			vme_trigger_replace_locked(vme, trigger, NULL);
			return 0;
		}
		if (fd < 0)
			return -EINVAL;
		ctx = eventfd_ctx_fdget(fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
		vme_trigger_replace_locked(vme, trigger, ctx);
		return 0;
	}
	return -EINVAL;
}

static void vme_irqs_release(struct vme_device *vme)
{
	mutex_lock(&vme->irq_lock);
	vme_trigger_replace_locked(vme, &vme->err_trigger, NULL);
	vme_trigger_replace_locked(vme, &vme->req_trigger, NULL);
	mutex_unlock(&vme->irq_lock);
}

/*
 * vfio_device_ops.request: the instance is being removed while its device
 * fd is open.  As vfio-pci, ask the user to release the device through the
 * REQ eventfd; the vfio core calls again every 10 s until it is released.
 */
static void vme_request(struct vfio_device *vdev, unsigned int count)
{
	struct vme_device *vme = to_vme(vdev);

	mutex_lock(&vme->irq_lock);
	if (vme->req_trigger) {
		dev_dbg(vdev->dev, "relaying device request to user (#%u)\n",
			count);
		vme_eventfd_signal(vme->req_trigger);
	} else if (!count) {
		dev_dbg(vdev->dev,
			"no device request channel registered, blocked until released by user\n");
	}
	mutex_unlock(&vme->irq_lock);
}

static void vme_close_device(struct vfio_device *vdev)
{
	struct vme_device *vme = to_vme(vdev);

	vme_close(vme);
	/* The triggers belong to this user of the device (as vfio-pci). */
	vme_irqs_release(vme);
}

/*
 * read()/write() on the device fd: as vfio-pci and mtty, the position
 * moves by the bytes transferred.  The vfio core passes the file's f_pos
 * for read(2)/write(2) (the device fd has no llseek, so it starts at 0)
 * and a private one for pread(2)/pwrite(2).
 */
static ssize_t vme_read(struct vfio_device *vdev, char __user *buf,
			size_t count, loff_t *ppos)
{
	ssize_t ret = vme_region_read(to_vme(vdev), buf, count, *ppos);

	if (ret > 0)
		*ppos += ret;
	return ret;
}

static ssize_t vme_write(struct vfio_device *vdev, const char __user *buf,
			 size_t count, loff_t *ppos)
{
	ssize_t ret = vme_region_write(to_vme(vdev), buf, count, *ppos);

	if (ret > 0)
		*ppos += ret;
	return ret;
}

static int vme_ioctl_get_info(struct vme_device *vme, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_device_info, num_irqs);
	struct vfio_device_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
	info.num_regions = VFIO_PCI_NUM_REGIONS;
	info.num_irqs = VFIO_PCI_NUM_IRQS;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static int vme_ioctl_get_region_info(struct vme_device *vme, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_region_info info;
	u64 size;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	switch (info.index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		size = VME_CONFIG_SIZE;
		break;
	case VFIO_PCI_BAR0_REGION_INDEX:
		size = VFIO_MIG_EMU_BAR0_SIZE;
		break;
	case VFIO_PCI_BAR2_REGION_INDEX:
		/*
		 * What config-space BAR sizing reports: mem_size rounded up to
		 * a power of two (QEMU asserts that the two agree).
		 */
		size = vme->bar2_size;
		break;
	case VFIO_PCI_BAR1_REGION_INDEX:
	case VFIO_PCI_BAR3_REGION_INDEX ... VFIO_PCI_ROM_REGION_INDEX:
	case VFIO_PCI_VGA_REGION_INDEX:
		size = 0;
		break;
	default:
		return -EINVAL;
	}

	info.offset = (u64)info.index << VME_OFFSET_SHIFT;
	info.size = size;
	info.flags = size ? VFIO_REGION_INFO_FLAG_READ |
			    VFIO_REGION_INFO_FLAG_WRITE : 0;
	info.cap_offset = 0;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static int vme_ioctl_get_irq_info(struct vme_device *vme, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_irq_info, count);
	struct vfio_irq_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS)
		return -EINVAL;

	/* ERR and REQ: one eventfd each (vfio-pci); nothing else. */
	info.count = vme_irq_count(info.index);
	info.flags = info.count ? VFIO_IRQ_INFO_EVENTFD |
				  VFIO_IRQ_INFO_NORESIZE : 0;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static int vme_ioctl_set_irqs(struct vme_device *vme,
			      struct vfio_irq_set __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_irq_set, count);
	struct vfio_irq_set hdr;
	size_t data_size = 0;
	u8 *data = NULL;
	int ret;

	if (copy_from_user(&hdr, arg, minsz))
		return -EFAULT;
	/* Only ERR and REQ have a vector: anything else is EINVAL here. */
	ret = vfio_set_irqs_validate_and_prepare(&hdr, vme_irq_count(hdr.index),
						 VFIO_PCI_NUM_IRQS, &data_size);
	if (ret)
		return ret;
	/* No MASK/UNMASK for ERR and REQ (vfio-pci: ENOTTY). */
	if ((hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) !=
	    VFIO_IRQ_SET_ACTION_TRIGGER)
		return -ENOTTY;
	if (data_size) {
		data = memdup_user(&arg->data, data_size);
		if (IS_ERR(data))
			return PTR_ERR(data);
	}
	mutex_lock(&vme->irq_lock);
	ret = vme_set_trigger_locked(vme, hdr.index, hdr.count, hdr.flags,
				     data);
	mutex_unlock(&vme->irq_lock);
	kfree(data);
	return ret;
}

static long vme_ioctl(struct vfio_device *vdev, unsigned int cmd,
		      unsigned long arg)
{
	struct vme_device *vme = to_vme(vdev);
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO:
		return vme_ioctl_get_info(vme, uarg);
	case VFIO_DEVICE_GET_REGION_INFO:
		return vme_ioctl_get_region_info(vme, uarg);
	case VFIO_DEVICE_GET_IRQ_INFO:
		return vme_ioctl_get_irq_info(vme, uarg);
	case VFIO_DEVICE_SET_IRQS:
		return vme_ioctl_set_irqs(vme, uarg);
	case VFIO_DEVICE_RESET:
		return vme_reset(vme);
	}
	return -ENOTTY;
}

/*
 * VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2: SET (no data, any data ignored)
 * opts in to flags being an output of VFIO_MIG_GET_PRECOPY_INFO, with
 * VFIO_PRECOPY_INFO_REINIT.  Kernels whose vfio core knows the feature
 * handle it there and never pass it here (see vme_core_precopy_v2()).
 * The opt-in lasts until the device fd is closed and applies from the
 * next VFIO_MIG_GET_PRECOPY_INFO on, also to a precopy session already
 * open (vme_save_v2_locked()).
 */
static int vme_feature_precopy_v2(struct vme_device *vme, u32 flags,
				  size_t argsz)
{
	int ret;

	if (!(vme->vdev.migration_flags & VFIO_MIGRATION_PRE_COPY) ||
	    READ_ONCE(vme->knobs.refuse_precopy_v2))
		return -ENOTTY;
	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
	if (ret != 1)
		return ret;
	if (mutex_lock_killable(&vme->state_mutex))
		return -EINTR;
	WRITE_ONCE(vme->precopy_v2, true);
	vme_state_mutex_unlock(vme);
	return 0;
}

static int vme_device_feature(struct vfio_device *vdev, u32 flags,
			      void __user *arg, size_t argsz)
{
	switch (flags & VFIO_DEVICE_FEATURE_MASK) {
	case VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2:
		return vme_feature_precopy_v2(to_vme(vdev), flags, argsz);
#ifndef HAVE_VFIO_MIG_GET_DATA_SIZE
	case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
		return vme_feature_mig_data_size(vdev, flags, arg, argsz);
#endif
	default:
		return -ENOTTY;
	}
}

static const struct vfio_device_ops vme_dev_ops = {
	.name = "vfio-mig-emu",
	.init = vme_init_dev,
	.release = vme_release_dev,
	.open_device = vme_open_device,
	.close_device = vme_close_device,
	.read = vme_read,
	.write = vme_write,
	.ioctl = vme_ioctl,
	.device_feature = vme_device_feature,
	.request = vme_request,
#ifdef HAVE_VFIO_IOMMUFD_EMULATED
	.bind_iommufd = vfio_iommufd_emulated_bind,
	.unbind_iommufd = vfio_iommufd_emulated_unbind,
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
#endif
};

/* ---- mdev driver ------------------------------------------------------ */

static int vme_probe(struct mdev_device *mdev)
{
	struct vme_device *vme;
	int ret;

	vme = vfio_alloc_device(vme_device, vdev, &mdev->dev, &vme_dev_ops);
	if (IS_ERR(vme))
		return PTR_ERR(vme);

	ret = vfio_register_emulated_iommu_dev(&vme->vdev);
	if (ret)
		goto err_put_vdev;
	dev_set_drvdata(&mdev->dev, vme);
	mutex_lock(&vme_devices_lock);
	list_add_tail(&vme->node, &vme_devices);
	mutex_unlock(&vme_devices_lock);
	return 0;

err_put_vdev:
	vfio_put_device(&vme->vdev);
	return ret;
}

static void vme_remove(struct mdev_device *mdev)
{
	struct vme_device *vme = dev_get_drvdata(&mdev->dev);

	/* Netlink finds it no more; a command running holds a reference. */
	mutex_lock(&vme_devices_lock);
	list_del_init(&vme->node);
	mutex_unlock(&vme_devices_lock);
	vfio_unregister_group_dev(&vme->vdev);
	vfio_put_device(&vme->vdev);
}

static struct mdev_driver vme_mdev_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = VFIO_MIG_EMU_NAME,
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.max_instances = VME_MAX_INSTANCES,
	.probe = vme_probe,
	.remove = vme_remove,
};

/* ---- parent device: counters ------------------------------------------ */

#define VME_COUNTER_ATTR(name)						\
static ssize_t name##_show(struct device *dev,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%d\n", atomic_read(&vme_##name));	\
}									\
static DEVICE_ATTR_RO(name)

VME_COUNTER_ATTR(live_devices);
VME_COUNTER_ATTR(live_files);
VME_COUNTER_ATTR(live_buffers);
VME_COUNTER_ATTR(live_pages);
VME_COUNTER_ATTR(live_eventfds);

static struct attribute *vme_stats_attrs[] = {
	&dev_attr_live_devices.attr,
	&dev_attr_live_files.attr,
	&dev_attr_live_buffers.attr,
	&dev_attr_live_pages.attr,
	&dev_attr_live_eventfds.attr,
	NULL,
};

static const struct attribute_group vme_stats_group = {
	.name = "stats",
	.attrs = vme_stats_attrs,
};

static const struct attribute_group *vme_parent_groups[] = {
	&vme_stats_group,
	NULL,
};

static void vme_parent_release(struct device *dev)
{
}

static int __init vme_init(void)
{
	int ret;

	vme_crc_init();
	ret = vme_netlink_init();
	if (ret)
		return ret;

	ret = mdev_register_driver(&vme_mdev_driver);
	if (ret)
		goto err_netlink;

	vme_parent.class = vme_class_create(VFIO_MIG_EMU_NAME);
	if (IS_ERR(vme_parent.class)) {
		ret = PTR_ERR(vme_parent.class);
		goto err_unregister_driver;
	}

	vme_parent.dev.class = vme_parent.class;
	vme_parent.dev.release = vme_parent_release;
	vme_parent.dev.groups = vme_parent_groups;
	ret = dev_set_name(&vme_parent.dev, "%s", VFIO_MIG_EMU_NAME);
	if (ret)
		goto err_destroy_class;
	ret = device_register(&vme_parent.dev);
	if (ret)
		goto err_put_dev;

	ret = mdev_register_parent(&vme_parent.parent, &vme_parent.dev,
				   &vme_mdev_driver, vme_mdev_types,
				   vme_offer_types());
	if (ret)
		goto err_del_dev;
	return 0;

err_del_dev:
	device_del(&vme_parent.dev);
err_put_dev:
	put_device(&vme_parent.dev);
err_destroy_class:
	class_destroy(vme_parent.class);
err_unregister_driver:
	mdev_unregister_driver(&vme_mdev_driver);
err_netlink:
	vme_netlink_exit();
	return ret;
}

static void __exit vme_exit(void)
{
	/* First: no netlink command may run while instances go away. */
	vme_netlink_exit();
	mdev_unregister_parent(&vme_parent.parent);
	device_unregister(&vme_parent.dev);
	class_destroy(vme_parent.class);
	mdev_unregister_driver(&vme_mdev_driver);
}

module_init(vme_init);
module_exit(vme_exit);

MODULE_LICENSE("GPL");
MODULE_ALIAS_GENL_FAMILY(VFIO_MIG_EMU_NAME);
MODULE_DESCRIPTION("Emulated migratable vfio-pci device for migration uAPI testing");
