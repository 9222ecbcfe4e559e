// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_mig_emu: migration data files.
 *
 * A saving file produces the stream record by record into a staging
 * buffer that holds at most one record, refilled only once the reader has
 * drained it: buffering is bounded whatever the device size.  A resuming
 * file collects one header or record at a time in a parse buffer of the
 * same size, validates it and applies it to the device.
 *
 * Lifetime: the device holds a reference on the file of each open session
 * and drops it after vme_migf_disable().  Once disabled, a file never
 * touches the device again, so it may outlive it.
 */
#include <linux/anon_inodes.h>
#include <linux/bitmap.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vme.h"

enum vme_save_phase {
	VME_SAVE_HEADER,
	VME_SAVE_CONFIG,
	VME_SAVE_RESOURCES,	/* the resources present at session start */
	VME_SAVE_MEM,		/* dirty pages; late resources in stop-copy */
	VME_SAVE_FINAL_CONFIG,
	VME_SAVE_REGS,
	VME_SAVE_END,
	VME_SAVE_DONE,
};

enum vme_resume_stage {
	VME_LOAD_HEADER,
	VME_LOAD_RECORD,	/* collecting a record header */
	VME_LOAD_PAYLOAD,	/* collecting its payload */
	VME_LOAD_DONE,		/* END applied */
};

struct vme_migration_file {
	struct file *filp;
	wait_queue_head_t poll_wait;

	/* lock protects every field below. */
	struct mutex lock;
	bool disabled;			/* session over: I/O fails -ENODEV */
	struct vme_device *vme;		/* NULL once disabled */
	u8 *buf;			/* VME_BUF_SIZE; NULL once disabled */
	size_t buf_len;			/* bytes staged / collected */
	size_t buf_pos;			/* bytes read out / bytes wanted */
	u32 seq;			/* next record number */

	/* saving */
	bool stop_copy;			/* STOP_COPY: finish the stream */
	enum vme_save_phase phase;
	u64 read_bytes;			/* stream bytes handed to the reader */
	u64 initial_total;		/* stream offset where initial data ends */
	u32 initial_res;		/* resources that are initial data */
	u32 res_sent;
	bool v2;			/* PRECOPY_INFOv2 opted in at start */
	bool reinit_report;		/* REINIT not yet reported */
	unsigned long *init_map;	/* dirty pages that are initial data */
	unsigned long *tmp_map;		/* scratch for dirty & ~init_map */
	u32 final_digest;
	struct vfio_mig_emu_regs final_regs;

	/* resuming */
	enum vme_resume_stage stage;
	bool broken;			/* stream rejected: writes -EINVAL */
	const char *why;		/* reason the stream was rejected */
};

struct file *vme_migf_file(struct vme_migration_file *migf)
{
	return migf->filp;
}

void vme_migf_wake(struct vme_migration_file *migf)
{
	wake_up_interruptible_poll(&migf->poll_wait, EPOLLIN | EPOLLRDNORM);
}

static void vme_migf_free_buf_locked(struct vme_migration_file *migf)
{
	lockdep_assert_held(&migf->lock);
	bitmap_free(migf->init_map);
	migf->init_map = NULL;
	bitmap_free(migf->tmp_map);
	migf->tmp_map = NULL;
	if (!migf->buf)
		return;
	kvfree(migf->buf);
	migf->buf = NULL;
	atomic_dec(&vme_live_buffers);
}

void vme_migf_disable(struct vme_migration_file *migf)
{
	mutex_lock(&migf->lock);
	migf->disabled = true;
	migf->vme = NULL;
	vme_migf_free_buf_locked(migf);
	mutex_unlock(&migf->lock);
	wake_up_interruptible_poll(&migf->poll_wait, EPOLLHUP | EPOLLERR);
}

static int vme_migf_release(struct inode *inode, struct file *filp)
{
	struct vme_migration_file *migf = filp->private_data;

	mutex_lock(&migf->lock);
	vme_migf_free_buf_locked(migf);
	mutex_unlock(&migf->lock);
	mutex_destroy(&migf->lock);
	kfree(migf);
	atomic_dec(&vme_live_files);
	return 0;
}

static struct vme_migration_file *
vme_migf_alloc(struct vme_device *vme, const struct file_operations *fops,
	       int flags, const char *name, bool saving)
{
	struct vme_migration_file *migf;
	struct file *filp;
	int ret;

	migf = kzalloc(sizeof(*migf), GFP_KERNEL_ACCOUNT);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	migf->buf = kvzalloc(VME_BUF_SIZE, GFP_KERNEL_ACCOUNT);
	if (!migf->buf) {
		ret = -ENOMEM;
		goto err_free_migf;
	}
	if (saving) {
		migf->init_map = bitmap_zalloc(vme->nr_pages,
					       GFP_KERNEL_ACCOUNT);
		migf->tmp_map = bitmap_zalloc(vme->nr_pages,
					      GFP_KERNEL_ACCOUNT);
		if (!migf->init_map || !migf->tmp_map) {
			ret = -ENOMEM;
			goto err_free_maps;
		}
	}
	mutex_init(&migf->lock);
	init_waitqueue_head(&migf->poll_wait);
	migf->vme = vme;

	filp = anon_inode_getfile(name, fops, migf, flags);
	if (IS_ERR(filp)) {
		ret = PTR_ERR(filp);
		goto err_free_buf;
	}
	stream_open(filp->f_inode, filp);
	migf->filp = filp;
	atomic_inc(&vme_live_files);
	atomic_inc(&vme_live_buffers);
	return migf;

err_free_buf:
	mutex_destroy(&migf->lock);
err_free_maps:
	bitmap_free(migf->init_map);
	bitmap_free(migf->tmp_map);
	kvfree(migf->buf);
err_free_migf:
	kfree(migf);
	return ERR_PTR(ret);
}

/* ---- saving ----------------------------------------------------------- */

static void vme_stage_record_locked(struct vme_migration_file *migf, u16 type,
				    u32 length, u64 arg)
{
	struct vfio_mig_emu_record *rec = (void *)migf->buf;

	lockdep_assert_held(&migf->lock);
	vme_record_encode(rec, type, migf->seq++, length, arg,
			  migf->buf + VME_REC_SIZE);
	migf->buf_len = VME_REC_SIZE + length;
	migf->buf_pos = 0;
}

/* Stream bytes of the fixed records still to come before the resources. */
static u64 vme_save_pending_fixed_locked(struct vme_migration_file *migf)
{
	lockdep_assert_held(&migf->lock);
	switch (migf->phase) {
	case VME_SAVE_HEADER:
		return VME_HDR_SIZE + VME_REC_SIZE + VME_CONFIG_SIZE;
	case VME_SAVE_CONFIG:
		return VME_REC_SIZE + VME_CONFIG_SIZE;
	default:
		return 0;
	}
}

/*
 * Resources were added while a precopy session runs.  Under v1 they stay
 * for stop-copy.  With the PRECOPY_INFOv2 opt-in they are new initial
 * data: the initial region is redrawn from the current read position to
 * cover what is staged, the records not yet produced before the
 * resources, the new resources and every page dirty right now (so
 * dirty_bytes restarts from zero), and the next VFIO_MIG_GET_PRECOPY_INFO
 * reports VFIO_PRECOPY_INFO_REINIT.
 */
static void vme_save_sync_locked(struct vme_migration_file *migf)
{
	struct vme_device *vme = migf->vme;

	lockdep_assert_held(&migf->lock);
	lockdep_assert_held(&vme->dev_lock);
	if (!vme->res_changed)
		return;
	vme->res_changed = false;
	if (!migf->v2 || migf->stop_copy || migf->phase > VME_SAVE_MEM)
		return;

	bitmap_copy(migf->init_map, vme->dirty, vme->nr_pages);
	migf->initial_res = vme->nr_res;
	migf->initial_total = migf->read_bytes +
			      (migf->buf_len - migf->buf_pos) +
			      vme_save_pending_fixed_locked(migf) +
			      (u64)(vme->nr_res - migf->res_sent) *
			      (VME_REC_SIZE + VME_RES_SIZE) +
			      vme_mem_stream_bytes(migf->init_map,
						   vme->nr_pages);
	migf->reinit_report = true;
}

/* MEM record bytes still to come: initial pages, then the other dirty. */
static u64 vme_save_mem_bytes_locked(struct vme_migration_file *migf,
				     bool initial, bool others)
{
	struct vme_device *vme = migf->vme;
	u64 bytes = 0;

	lockdep_assert_held(&migf->lock);
	lockdep_assert_held(&vme->dev_lock);
	if (initial)
		bytes += vme_mem_stream_bytes(migf->init_map, vme->nr_pages);
	if (others) {
		bitmap_andnot(migf->tmp_map, vme->dirty, migf->init_map,
			      vme->nr_pages);
		bytes += vme_mem_stream_bytes(migf->tmp_map, vme->nr_pages);
	}
	return bytes;
}

/*
 * Stage the next record of the stream.  Returns true when something was
 * staged, false at the (temporary, in precopy) end of the stream.
 */
static bool vme_save_produce_locked(struct vme_migration_file *migf)
{
	struct vme_device *vme = migf->vme;
	void *payload = migf->buf + VME_REC_SIZE;
	u32 len, id;
	u64 off;

	lockdep_assert_held(&migf->lock);
	for (;;) {
		switch (migf->phase) {
		case VME_SAVE_HEADER:
			vme_stream_header_encode((void *)migf->buf, vme->profile,
						 vme->mem_size);
			migf->buf_len = VME_HDR_SIZE;
			migf->buf_pos = 0;
			migf->phase = VME_SAVE_CONFIG;
			return true;

		case VME_SAVE_CONFIG:
			mutex_lock(&vme->dev_lock);
			memcpy(payload, vme->config, VME_CONFIG_SIZE);
			mutex_unlock(&vme->dev_lock);
			vme_stage_record_locked(migf, VFIO_MIG_EMU_REC_CONFIG,
						VME_CONFIG_SIZE, 0);
			migf->phase = VME_SAVE_RESOURCES;
			return true;

		case VME_SAVE_RESOURCES:
		case VME_SAVE_MEM:
			mutex_lock(&vme->dev_lock);
			vme_save_sync_locked(migf);
			id = migf->res_sent;
			if (id < vme->nr_res &&
			    (id < migf->initial_res || migf->stop_copy)) {
				memcpy(payload, &vme->res[id], VME_RES_SIZE);
				mutex_unlock(&vme->dev_lock);
				migf->res_sent++;
				vme_stage_record_locked(migf,
							VFIO_MIG_EMU_REC_RESOURCE,
							VME_RES_SIZE, 0);
				return true;
			}
			if (migf->phase == VME_SAVE_RESOURCES) {
				/* Initial resources first, then memory. */
				mutex_unlock(&vme->dev_lock);
				migf->phase = VME_SAVE_MEM;
				continue;
			}
			len = vme_dirty_take_locked(vme, migf->init_map,
						    payload, &off);
			if (!len)
				len = vme_dirty_take_locked(vme, vme->dirty,
							    payload, &off);
			mutex_unlock(&vme->dev_lock);
			if (len) {
				vme_stage_record_locked(migf, VFIO_MIG_EMU_REC_MEM,
							len, off);
				return true;
			}
			if (!migf->stop_copy)
				return false;
			migf->phase = VME_SAVE_FINAL_CONFIG;
			continue;

		case VME_SAVE_FINAL_CONFIG:
			/* The device is stopped: snapshot what remains. */
			mutex_lock(&vme->dev_lock);
			memcpy(payload, vme->config, VME_CONFIG_SIZE);
			vme_save_regs_locked(vme, &migf->final_regs);
			migf->final_digest = vme_digest_locked(vme);
			mutex_unlock(&vme->dev_lock);
			vme_stage_record_locked(migf, VFIO_MIG_EMU_REC_CONFIG,
						VME_CONFIG_SIZE, 0);
			migf->phase = VME_SAVE_REGS;
			return true;

		case VME_SAVE_REGS:
			memcpy(payload, &migf->final_regs, VME_REGS_SIZE);
			vme_stage_record_locked(migf, VFIO_MIG_EMU_REC_REGS,
						VME_REGS_SIZE, 0);
			migf->phase = VME_SAVE_END;
			return true;

		case VME_SAVE_END:
			vme_stage_record_locked(migf, VFIO_MIG_EMU_REC_END, 0,
						migf->final_digest);
			migf->phase = VME_SAVE_DONE;
			return true;

		case VME_SAVE_DONE:
			return false;
		}
	}
}

static ssize_t vme_save_read(struct file *filp, char __user *ubuf,
			     size_t len, loff_t *pos)
{
	struct vme_migration_file *migf = filp->private_data;
	size_t done = 0, chunk;
	ssize_t ret = 0;

	if (pos)
		return -ESPIPE;

	mutex_lock(&migf->lock);
	if (migf->disabled) {
		ret = -ENODEV;
		goto out_unlock;
	}

	while (done < len) {
		if (migf->buf_pos == migf->buf_len &&
		    !vme_save_produce_locked(migf)) {
			/* Temporary end of stream in precopy, EOF otherwise. */
			if (!migf->stop_copy)
				ret = -ENOMSG;
			break;
		}
		chunk = min(len - done, migf->buf_len - migf->buf_pos);
		if (copy_to_user(ubuf + done, migf->buf + migf->buf_pos,
				 chunk)) {
			ret = -EFAULT;
			break;
		}
		migf->buf_pos += chunk;
		migf->read_bytes += chunk;
		done += chunk;
	}
	if (done)
		ret = done;

out_unlock:
	mutex_unlock(&migf->lock);
	return ret;
}

static __poll_t vme_save_poll(struct file *filp, poll_table *wait)
{
	struct vme_migration_file *migf = filp->private_data;
	struct vme_device *vme;
	__poll_t mask = 0;

	poll_wait(filp, &migf->poll_wait, wait);

	mutex_lock(&migf->lock);
	vme = migf->vme;
	if (migf->disabled) {
		mask = EPOLLHUP | EPOLLERR;
	} else if (migf->stop_copy || migf->buf_pos < migf->buf_len ||
		   migf->phase < VME_SAVE_MEM) {
		/* In stop-copy even the end of stream is readable (EOF). */
		mask = EPOLLIN | EPOLLRDNORM;
	} else {
		mutex_lock(&vme->dev_lock);
		vme_save_sync_locked(migf);
		if (migf->res_sent < migf->initial_res ||
		    find_first_bit(vme->dirty, vme->nr_pages) < vme->nr_pages)
			mask = EPOLLIN | EPOLLRDNORM;
		mutex_unlock(&vme->dev_lock);
	}
	mutex_unlock(&migf->lock);
	return mask;
}

static long vme_save_ioctl(struct file *filp, unsigned int cmd,
			   unsigned long arg)
{
	struct vme_migration_file *migf = filp->private_data;
	unsigned long minsz = offsetofend(struct vfio_precopy_info, dirty_bytes);
	struct vfio_precopy_info info;
	u64 staged_end, initial_end;
	struct vme_device *vme;

	if (cmd != VFIO_MIG_GET_PRECOPY_INFO)
		return -ENOTTY;

	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	mutex_lock(&migf->lock);
	/* Valid in PRE_COPY and PRE_COPY_P2P only. */
	if (migf->disabled || migf->stop_copy) {
		mutex_unlock(&migf->lock);
		return -EINVAL;
	}
	vme = migf->vme;

	mutex_lock(&vme->dev_lock);
	vme_save_sync_locked(migf);
	/* Initial data are the stream bytes before initial_total. */
	initial_end = migf->initial_total;
	info.initial_bytes = initial_end - min(migf->read_bytes, initial_end);
	staged_end = migf->read_bytes + migf->buf_len - migf->buf_pos;
	info.dirty_bytes = staged_end - max(migf->read_bytes,
					    min(staged_end, initial_end));
	info.dirty_bytes += vme_save_mem_bytes_locked(migf, false, true);
	mutex_unlock(&vme->dev_lock);
	if (migf->v2) {
		/* v2: flags is an output. */
		info.flags = migf->reinit_report ? VFIO_PRECOPY_INFO_REINIT : 0;
		migf->reinit_report = false;
	}
	mutex_unlock(&migf->lock);

	/* Without the v2 opt-in flags is echoed back as passed in. */
	return copy_to_user((void __user *)arg, &info, minsz) ? -EFAULT : 0;
}

static const struct file_operations vme_save_fops = {
	.owner = THIS_MODULE,
	.read = vme_save_read,
	.poll = vme_save_poll,
	.unlocked_ioctl = vme_save_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = vme_migf_release,
	.llseek = VME_NO_LLSEEK,
};

struct vme_migration_file *vme_save_file_create(struct vme_device *vme,
						bool stop_copy)
{
	struct vme_migration_file *migf;

	lockdep_assert_held(&vme->state_mutex);
	migf = vme_migf_alloc(vme, &vme_save_fops, O_RDONLY,
			      "[vfio_mig_emu_save]", true);
	if (IS_ERR(migf))
		return migf;

	/* Not visible to anyone yet: no need for migf->lock. */
	migf->stop_copy = stop_copy;
	migf->v2 = vme->precopy_v2 || vme_core_precopy_v2(&vme->vdev);
	mutex_lock(&vme->dev_lock);
	vme->res_changed = false;
	vme_dirty_start_locked(vme);
	migf->initial_res = vme->nr_res;
	vme->saving_migf = migf;
	mutex_unlock(&vme->dev_lock);
	migf->initial_total = VME_HDR_SIZE + VME_REC_SIZE + VME_CONFIG_SIZE +
			      (u64)migf->initial_res * (VME_REC_SIZE +
							VME_RES_SIZE);
	return migf;
}

void vme_save_enter_stop_copy(struct vme_migration_file *migf)
{
	mutex_lock(&migf->lock);
	migf->stop_copy = true;
	mutex_unlock(&migf->lock);
	vme_migf_wake(migf);
}

#define VME_FINAL_BYTES	(3 * VME_REC_SIZE + VME_CONFIG_SIZE + VME_REGS_SIZE)

/* Bytes a saving session still has to deliver if it went stop-copy now. */
u64 vme_save_remaining(struct vme_migration_file *migf)
{
	struct vme_device *vme;
	u64 rem;

	mutex_lock(&migf->lock);
	vme = migf->vme;
	if (migf->disabled) {
		mutex_unlock(&migf->lock);
		return 0;
	}
	rem = migf->buf_len - migf->buf_pos;
	mutex_lock(&vme->dev_lock);
	switch (migf->phase) {
	case VME_SAVE_HEADER:
		rem += VME_HDR_SIZE;
		fallthrough;
	case VME_SAVE_CONFIG:
		rem += VME_REC_SIZE + VME_CONFIG_SIZE;
		fallthrough;
	case VME_SAVE_RESOURCES:
	case VME_SAVE_MEM:
		rem += (u64)(vme->nr_res - migf->res_sent) *
		       (VME_REC_SIZE + VME_RES_SIZE);
		rem += vme_save_mem_bytes_locked(migf, true, true);
		rem += VME_FINAL_BYTES;
		break;
	case VME_SAVE_FINAL_CONFIG:
		rem += VME_FINAL_BYTES;
		break;
	case VME_SAVE_REGS:
		rem += 2 * VME_REC_SIZE + VME_REGS_SIZE;
		break;
	case VME_SAVE_END:
		rem += VME_REC_SIZE;
		break;
	case VME_SAVE_DONE:
		break;
	}
	mutex_unlock(&vme->dev_lock);
	mutex_unlock(&migf->lock);
	return rem;
}

/* Size of a whole stop-copy stream of the current state. */
u64 vme_stop_copy_bytes_locked(struct vme_device *vme)
{
	u64 bytes;

	lockdep_assert_held(&vme->state_mutex);
	mutex_lock(&vme->dev_lock);
	bytes = VME_HDR_SIZE + VME_REC_SIZE + VME_CONFIG_SIZE +
		(u64)vme->nr_res * (VME_REC_SIZE + VME_RES_SIZE) +
		vme_mem_stream_bytes(vme->present, vme->nr_pages) +
		VME_FINAL_BYTES;
	mutex_unlock(&vme->dev_lock);
	return bytes;
}

/* ---- resuming --------------------------------------------------------- */

static int vme_resume_fail_locked(struct vme_migration_file *migf,
				  const char *why, int err)
{
	lockdep_assert_held(&migf->lock);
	migf->broken = true;
	migf->why = why;
	return err;
}

/* Expect @want bytes next (buf_pos is the target fill level). */
static void vme_resume_expect_locked(struct vme_migration_file *migf,
				     enum vme_resume_stage stage, size_t want)
{
	lockdep_assert_held(&migf->lock);
	migf->stage = stage;
	migf->buf_pos = want;
}

static int vme_resume_apply_locked(struct vme_migration_file *migf)
{
	struct vfio_mig_emu_record *rec = (void *)migf->buf;
	void *payload = migf->buf + VME_REC_SIZE;
	struct vme_device *vme = migf->vme;
	const char *why = NULL;
	int ret;

	lockdep_assert_held(&migf->lock);
	ret = vme_record_check_crc(rec, payload, &why);
	if (ret)
		return vme_resume_fail_locked(migf, why, ret);

	mutex_lock(&vme->dev_lock);
	switch (le16_to_cpu(rec->type)) {
	case VFIO_MIG_EMU_REC_CONFIG:
		ret = vme_load_config_locked(vme, payload, &why);
		break;
	case VFIO_MIG_EMU_REC_REGS:
		ret = vme_load_regs_locked(vme, payload, &why);
		break;
	case VFIO_MIG_EMU_REC_MEM:
		ret = vme_load_mem_locked(vme, le64_to_cpu(rec->arg), payload,
					  le32_to_cpu(rec->length), &why);
		break;
	case VFIO_MIG_EMU_REC_RESOURCE:
		ret = vme_load_resource_locked(vme, payload, &why);
		break;
	case VFIO_MIG_EMU_REC_END:
		if (vme_digest_locked(vme) != (u32)le64_to_cpu(rec->arg)) {
			why = "loaded state does not match the END digest";
			ret = -EINVAL;
		}
		break;
	default:
		why = "unknown record type";
		ret = -EINVAL;
		break;
	}
	mutex_unlock(&vme->dev_lock);
	if (ret)
		return vme_resume_fail_locked(migf, why, ret);

	migf->seq++;
	migf->buf_len = 0;
	if (le16_to_cpu(rec->type) == VFIO_MIG_EMU_REC_END)
		vme_resume_expect_locked(migf, VME_LOAD_DONE, 0);
	else
		vme_resume_expect_locked(migf, VME_LOAD_RECORD, VME_REC_SIZE);
	return 0;
}

/* The parse buffer holds buf_pos bytes: act on them. */
static int vme_resume_consume_locked(struct vme_migration_file *migf)
{
	struct vfio_mig_emu_record *rec = (void *)migf->buf;
	struct vme_device *vme = migf->vme;
	const char *why = NULL;
	size_t want;
	int ret;

	lockdep_assert_held(&migf->lock);
	switch (migf->stage) {
	case VME_LOAD_HEADER:
		ret = vme_stream_header_check((void *)migf->buf, vme->profile,
					      vme->mem_size, &why);
		if (ret)
			return vme_resume_fail_locked(migf, why, ret);
		migf->buf_len = 0;
		vme_resume_expect_locked(migf, VME_LOAD_RECORD, VME_REC_SIZE);
		return 0;

	case VME_LOAD_RECORD:
		ret = vme_record_check(rec, migf->seq, vme->mem_size, &why);
		if (ret)
			return vme_resume_fail_locked(migf, why, ret);
		if (check_add_overflow(VME_REC_SIZE,
				       (size_t)le32_to_cpu(rec->length),
				       &want) || want > VME_BUF_SIZE)
			return vme_resume_fail_locked(migf, "record too long",
						      -EINVAL);
		vme_resume_expect_locked(migf, VME_LOAD_PAYLOAD, want);
		if (want > migf->buf_len)
			return 0;
		fallthrough;
	case VME_LOAD_PAYLOAD:
		return vme_resume_apply_locked(migf);

	case VME_LOAD_DONE:
		break;
	}
	return vme_resume_fail_locked(migf, "data after END record", -EINVAL);
}

static ssize_t vme_resume_write(struct file *filp, const char __user *ubuf,
				size_t len, loff_t *pos)
{
	struct vme_migration_file *migf = filp->private_data;
	size_t done = 0, chunk;
	ssize_t ret = 0;

	if (pos)
		return -ESPIPE;

	mutex_lock(&migf->lock);
	if (migf->disabled) {
		ret = -ENODEV;
		goto out_unlock;
	}
	if (migf->broken) {
		ret = -EINVAL;
		goto out_unlock;
	}

	while (done < len) {
		if (migf->stage == VME_LOAD_DONE) {
			ret = vme_resume_fail_locked(migf,
						     "data after END record",
						     -EINVAL);
			goto out_unlock;
		}
		chunk = min(len - done, migf->buf_pos - migf->buf_len);
		if (copy_from_user(migf->buf + migf->buf_len, ubuf + done,
				   chunk)) {
			ret = done ? done : -EFAULT;
			goto out_unlock;
		}
		migf->buf_len += chunk;
		done += chunk;
		if (migf->buf_len == migf->buf_pos) {
			ret = vme_resume_consume_locked(migf);
			if (ret)
				goto out_unlock;
		}
	}
	ret = done;

out_unlock:
	mutex_unlock(&migf->lock);
	return ret;
}

static const struct file_operations vme_resume_fops = {
	.owner = THIS_MODULE,
	.write = vme_resume_write,
	.release = vme_migf_release,
	.llseek = VME_NO_LLSEEK,
};

struct vme_migration_file *vme_resume_file_create(struct vme_device *vme)
{
	struct vme_migration_file *migf;

	lockdep_assert_held(&vme->state_mutex);
	migf = vme_migf_alloc(vme, &vme_resume_fops, O_WRONLY,
			      "[vfio_mig_emu_resume]", false);
	if (IS_ERR(migf))
		return migf;
	mutex_lock(&migf->lock);
	vme_resume_expect_locked(migf, VME_LOAD_HEADER, VME_HDR_SIZE);
	mutex_unlock(&migf->lock);
	return migf;
}

/* RESUMING -> STOP: was a complete, consistent stream loaded? */
int vme_resume_finish(struct vme_migration_file *migf, const char **why)
{
	int ret = 0;

	mutex_lock(&migf->lock);
	if (migf->broken) {
		*why = migf->why;
		ret = -EINVAL;
	} else if (migf->stage != VME_LOAD_DONE) {
		*why = "stream incomplete: no END record";
		ret = -EINVAL;
	}
	mutex_unlock(&migf->lock);
	return ret;
}
