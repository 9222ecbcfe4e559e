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
#include "trace.h"

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
	/*
	 * A read(), write() or ioctl may sleep under lock (a DELAY fault,
	 * the load cost): callers that cannot fail and must not wait it out
	 * (ending the session, entering stop-copy, finishing a resume)
	 * raise urgent and wake sleep_wait, which ends the sleep.
	 */
	wait_queue_head_t sleep_wait;
	atomic_t urgent;

	/* lock protects every field below. */
	struct mutex lock;
	bool disabled;			/* session over: I/O fails -ENODEV */
	bool stale;			/* quirk stale-fd-readable: EOF instead */
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
	bool v2;			/* PRECOPY_INFOv2: seen opted in */
	bool reinit_report;		/* REINIT not yet reported */
	u32 reinit_policy;		/* knob, taken at start */
	u32 res_ctx;			/* RESOURCE_BYTES knob, taken at start */
	u64 res_rec;			/* stream bytes of a RESOURCE record */
	unsigned long *init_map;	/* dirty pages that are initial data */
	unsigned long *tmp_map;		/* scratch for dirty & ~init_map */
	unsigned long *defer_map;	/* REINIT_DISCARD: pages set aside */
	bool deferred;			/* defer_map is not empty */
	u64 stale_dirty;		/* quirk dirty-kept-on-reinit */
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

/*
 * Take migf->lock for a caller that cannot fail and must not wait out a
 * sleep under it: the sleeper is woken and its sleep ends.  Otherwise the
 * holder's work under the lock is short.
 */
static void vme_migf_lock_urgent(struct vme_migration_file *migf)
{
	atomic_inc(&migf->urgent);
	wake_up_all(&migf->sleep_wait);
	mutex_lock(&migf->lock);
	atomic_dec(&migf->urgent);
}

/* The sleeps of one call under migf->lock: bounded, cut short by urgent. */
static void vme_migf_sleep_init(struct vme_migration_file *migf,
				struct vme_sleep *sl)
{
	sl->budget_us = VFIO_MIG_EMU_MAX_DELAY_US;
	sl->wq = &migf->sleep_wait;
	sl->abort = &migf->urgent;
}

/* Staging buffer, session struct and (saving) the three session bitmaps. */
static void vme_migf_kmem(struct vme_device *vme,
			  struct vme_migration_file *migf, int sign)
{
	vme_kmem(vme, VFIO_MIG_EMU_KMEM_BUFFERS,
		 sign * (s64)(VME_BUF_SIZE + sizeof(*migf)));
	if (migf->init_map)
		vme_kmem(vme, VFIO_MIG_EMU_KMEM_BITMAPS,
			 sign * 3 * vme_bitmap_bytes(vme->nr_pages));
}

static void vme_migf_free_buf_locked(struct vme_migration_file *migf)
{
	lockdep_assert_held(&migf->lock);
	if (migf->buf && migf->vme)
		vme_migf_kmem(migf->vme, migf, -1);
	bitmap_free(migf->init_map);
	migf->init_map = NULL;
	bitmap_free(migf->tmp_map);
	migf->tmp_map = NULL;
	bitmap_free(migf->defer_map);
	migf->defer_map = NULL;
	if (!migf->buf)
		return;
	kvfree(migf->buf);
	migf->buf = NULL;
	atomic_dec(&vme_live_buffers);
}

void vme_migf_disable(struct vme_migration_file *migf)
{
	vme_migf_lock_urgent(migf);
	migf->disabled = true;
	migf->stale = migf->vme && migf->init_map &&
		      vme_quirk(migf->vme, VFIO_MIG_EMU_QUIRK_STALE_FD_READABLE);
	vme_migf_free_buf_locked(migf);
	migf->vme = NULL;
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
		migf->defer_map = bitmap_zalloc(vme->nr_pages,
						GFP_KERNEL_ACCOUNT);
		if (!migf->init_map || !migf->tmp_map || !migf->defer_map) {
			ret = -ENOMEM;
			goto err_free_maps;
		}
	}
	mutex_init(&migf->lock);
	init_waitqueue_head(&migf->poll_wait);
	init_waitqueue_head(&migf->sleep_wait);
	atomic_set(&migf->urgent, 0);
	migf->vme = vme;

	filp = anon_inode_getfile(name, fops, migf, flags);
	if (IS_ERR(filp)) {
		ret = PTR_ERR(filp);
		goto err_free_buf;
	}
	stream_open(filp->f_inode, filp);
	migf->filp = filp;
	vme_migf_kmem(vme, migf, 1);
	atomic_inc(&vme_live_files);
	atomic_inc(&vme_live_buffers);
	return migf;

err_free_buf:
	mutex_destroy(&migf->lock);
err_free_maps:
	bitmap_free(migf->init_map);
	bitmap_free(migf->tmp_map);
	bitmap_free(migf->defer_map);
	kvfree(migf->buf);
err_free_migf:
	kfree(migf);
	return ERR_PTR(ret);
}

/* ---- saving ----------------------------------------------------------- */

/* @page_crcs: a MEM record's page CRCs (NULL: other records). */
static void vme_stage_record_crcs_locked(struct vme_migration_file *migf,
					 u16 type, u32 length, u64 arg,
					 const u32 *page_crcs)
{
	struct vfio_mig_emu_record *rec = (void *)migf->buf;

	lockdep_assert_held(&migf->lock);
	vme_record_encode(rec, type, migf->seq++, length, arg,
			  migf->buf + VME_REC_SIZE, page_crcs);
	migf->buf_len = VME_REC_SIZE + length;
	migf->buf_pos = 0;
}

static void vme_stage_record_locked(struct vme_migration_file *migf, u16 type,
				    u32 length, u64 arg)
{
	vme_stage_record_crcs_locked(migf, type, length, arg, NULL);
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
 * Resources were added while a precopy session runs.  Under v1 they are
 * dirty data: sent in PRE_COPY ahead of further memory and counted in
 * dirty_bytes, initial_bytes never grows (a v1 user cannot tell that they
 * are critical).  With the PRECOPY_INFOv2 opt-in they are new initial
 * data: the initial region is redrawn from the current read position to
 * cover what is staged, the records not yet produced before the
 * resources, the new resources and (REINIT_FOLD) every page dirty right
 * now, or (REINIT_DISCARD) only the initial pages still unsent, the other
 * dirty pages being set aside until the initial data is out.  Either way
 * dirty_bytes restarts from zero, and the next VFIO_MIG_GET_PRECOPY_INFO
 * reports VFIO_PRECOPY_INFO_REINIT.
 */
static u64 vme_save_mem_bytes_locked(struct vme_migration_file *migf,
				     bool initial, bool others, bool deferred);

static void vme_save_reinit_locked(struct vme_migration_file *migf)
{
	struct vme_device *vme = migf->vme;
	unsigned long nr = vme->nr_pages;

	lockdep_assert_held(&migf->lock);
	lockdep_assert_held(&vme->dev_lock);
	/* Quirk dirty-kept-on-reinit: the dirty counter is not restarted. */
	if (vme_quirk(vme, VFIO_MIG_EMU_QUIRK_DIRTY_KEPT_ON_REINIT))
		migf->stale_dirty += vme_save_mem_bytes_locked(migf, false,
							       true, true);
	if (migf->reinit_policy == VFIO_MIG_EMU_REINIT_DISCARD) {
		bitmap_andnot(migf->tmp_map, vme->dirty, migf->init_map, nr);
		bitmap_or(migf->defer_map, migf->defer_map, migf->tmp_map, nr);
		bitmap_and(vme->dirty, vme->dirty, migf->init_map, nr);
		migf->deferred = !bitmap_empty(migf->defer_map, nr);
	} else {
		bitmap_copy(migf->init_map, vme->dirty, nr);
	}
	migf->initial_res = vme->nr_res;
	migf->initial_total = migf->read_bytes +
			      (migf->buf_len - migf->buf_pos) +
			      vme_save_pending_fixed_locked(migf) +
			      (u64)(vme->nr_res - migf->res_sent) *
			      migf->res_rec +
			      vme_mem_stream_bytes(migf->init_map, nr);
	/* Quirk initial-grows-no-reinit: new initial data, no REINIT. */
	migf->reinit_report =
		!vme_quirk(vme, VFIO_MIG_EMU_QUIRK_INITIAL_GROWS_NO_REINIT);
}

/*
 * The PRECOPY_INFOv2 opt-in is looked at on every use, as the core's
 * vfio_check_precopy_ioctl() (and mlx5) do on every query, never latched
 * when the session starts: a user may opt in while a precopy session is
 * open.  From then on the session follows v2: flags is an output and new
 * critical data is REINIT.  What it did under v1 stands (resources already
 * counted as dirty data stay so), and a REINIT noted under v1 (for quirk
 * reinit-without-optin) is dropped: it announced no new initial data.
 * The opt-in only ends with the device fd, which ends the session too.
 */
static bool vme_save_v2_locked(struct vme_migration_file *migf)
{
	struct vme_device *vme = migf->vme;

	lockdep_assert_held(&migf->lock);
	if (!migf->v2 && (READ_ONCE(vme->precopy_v2) ||
			  vme_core_precopy_v2(&vme->vdev))) {
		migf->v2 = true;
		migf->reinit_report = false;
	}
	return migf->v2;
}

static void vme_save_sync_locked(struct vme_migration_file *migf)
{
	struct vme_device *vme = migf->vme;

	lockdep_assert_held(&migf->lock);
	lockdep_assert_held(&vme->dev_lock);
	vme_save_v2_locked(migf);
	if (vme->res_changed) {
		vme->res_changed = false;
		if (migf->v2 && !migf->stop_copy &&
		    migf->phase <= VME_SAVE_MEM)
			vme_save_reinit_locked(migf);
		/* v1: read by quirk reinit-without-optin only. */
		if (!migf->v2 && !migf->stop_copy)
			migf->reinit_report = true;
	}
	/* Pages set aside are dirty again once the initial data is out. */
	if (migf->deferred &&
	    (migf->stop_copy || (migf->res_sent >= migf->initial_res &&
				 bitmap_empty(migf->init_map, vme->nr_pages)))) {
		bitmap_or(vme->dirty, vme->dirty, migf->defer_map,
			  vme->nr_pages);
		bitmap_zero(migf->defer_map, vme->nr_pages);
		migf->deferred = false;
	}
}

/* MEM record bytes still to come: initial pages, then the other dirty. */
static u64 vme_save_mem_bytes_locked(struct vme_migration_file *migf,
				     bool initial, bool others, bool deferred)
{
	struct vme_device *vme = migf->vme;
	u64 bytes = 0;

	lockdep_assert_held(&migf->lock);
	lockdep_assert_held(&vme->dev_lock);
	if (initial)
		bytes += vme_mem_stream_bytes(migf->init_map, vme->nr_pages);
	if (others) {
		bitmap_copy(migf->tmp_map, vme->dirty, vme->nr_pages);
		/* DISCARD's pages set aside: sent later, counted here only. */
		if (deferred && migf->deferred)
			bitmap_or(migf->tmp_map, migf->tmp_map, migf->defer_map,
				  vme->nr_pages);
		bitmap_andnot(migf->tmp_map, migf->tmp_map, migf->init_map,
			      vme->nr_pages);
		bytes += vme_mem_stream_bytes(migf->tmp_map, vme->nr_pages);
	}
	return bytes;
}

/*
 * PRECOPY_INFO's figures; initial data are the bytes before initial_total.
 * @sync: first take in what changed on the device (new resources: a REINIT
 * redraws the initial data), as a query of the session's own user does;
 * an observer (DEV_GET) passes false and sees the session as it is.
 */
static void vme_save_figures_locked(struct vme_migration_file *migf,
				    __u64 *initial, __u64 *dirty, bool sync)
{
	struct vme_device *vme = migf->vme;
	u64 staged_end, initial_end;
	u32 sent;

	lockdep_assert_held(&migf->lock);
	lockdep_assert_held(&vme->dev_lock);
	if (sync)
		vme_save_sync_locked(migf);
	initial_end = migf->initial_total;
	*initial = initial_end - min(migf->read_bytes, initial_end);
	staged_end = migf->read_bytes + migf->buf_len - migf->buf_pos;
	*dirty = staged_end - max(migf->read_bytes,
				  min(staged_end, initial_end));
	*dirty += vme_save_mem_bytes_locked(migf, false, true, false);
	/* v1: resources added during the session are dirty data. */
	sent = max(migf->res_sent, migf->initial_res);
	if (vme->nr_res > sent)
		*dirty += (u64)(vme->nr_res - sent) * migf->res_rec;
	*dirty += migf->stale_dirty;
	/*
	 * Quirk initial-stuck: initial_bytes is the size of the initial
	 * data, not what is left of it, so it never reaches zero.
	 */
	if (vme_quirk(vme, VFIO_MIG_EMU_QUIRK_INITIAL_STUCK))
		*initial = initial_end;
}

/*
 * Stage the next record of the stream.  Returns true when something was
 * staged, false at the (temporary, in precopy) end of the stream.
 */
static bool vme_save_produce_locked(struct vme_migration_file *migf)
{
	struct vme_device *vme = migf->vme;
	void *payload = migf->buf + VME_REC_SIZE;
	u32 page_crcs[VME_PAGES_PER_REC];
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
			/*
			 * Initial resources first; in the memory phase any
			 * resource not sent yet (v1: added during the
			 * session, dirty data) goes once the initial pages
			 * are out, ahead of the other pages: the stream's
			 * initial data stays the bytes before initial_total.
			 */
			if (id < vme->nr_res &&
			    (id < migf->initial_res ||
			     (migf->phase == VME_SAVE_MEM &&
			      bitmap_empty(migf->init_map, vme->nr_pages)))) {
				memcpy(payload, &vme->res[id], VME_RES_SIZE);
				mutex_unlock(&vme->dev_lock);
				vme_resource_context(le64_to_cpu(((struct vfio_mig_emu_resource *)payload)->cookie),
						     payload + VME_RES_SIZE,
						     migf->res_ctx);
				migf->res_sent++;
				vme_stage_record_locked(migf,
							VFIO_MIG_EMU_REC_RESOURCE,
							VME_RES_SIZE +
							migf->res_ctx, 0);
				return true;
			}
			if (migf->phase == VME_SAVE_RESOURCES) {
				/* Initial resources first, then memory. */
				mutex_unlock(&vme->dev_lock);
				migf->phase = VME_SAVE_MEM;
				continue;
			}
			len = vme_dirty_take_locked(vme, migf->init_map,
						    payload, &off, page_crcs);
			if (!len)
				len = vme_dirty_take_locked(vme, vme->dirty,
							    payload, &off,
							    page_crcs);
			mutex_unlock(&vme->dev_lock);
			if (len) {
				vme_stage_record_crcs_locked(migf,
							     VFIO_MIG_EMU_REC_MEM,
							     len, off,
							     page_crcs);
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

/*
 * A FAIL_TO_ERROR fault fired in @migf: with migf->lock dropped, send the
 * device to ERROR if @migf is still its session, then drop the reference
 * taken under the lock.  The caller holds @migf's file.
 */
static void vme_migf_error_put(struct vme_migration_file *migf,
			       struct vme_device *vme, int err)
{
	if (!vme)
		return;
	vme_fault_to_error(vme, err, migf);
	vfio_put_device(&vme->vdev);
}

/*
 * Ask the faults of @site.  Returns the effect for the caller, or 0; for
 * FAIL and FAIL_TO_ERROR *@ret is the errno, and for FAIL_TO_ERROR
 * *@err_vme a referenced device for vme_migf_error_put().
 */
static u32 vme_migf_fault_locked(struct vme_migration_file *migf, u32 site,
				 ssize_t *ret, struct vme_device **err_vme,
				 struct vme_sleep *sl)
{
	struct vme_fault_act act;

	lockdep_assert_held(&migf->lock);
	switch (vme_fault_check_sleep(migf->vme, site, 0, 0, &act, sl)) {
	case VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR:
		*err_vme = migf->vme;
		get_device(&migf->vme->vdev.device);
		fallthrough;
	case VFIO_MIG_EMU_EFFECT_FAIL:
		*ret = act.err;
		break;
	}
	return act.effect;
}

static ssize_t vme_save_read(struct file *filp, char __user *ubuf,
			     size_t len, loff_t *pos)
{
	struct vme_migration_file *migf = filp->private_data;
	struct vme_device *err_vme = NULL;
	size_t done = 0, chunk;
	struct vme_sleep sl;
	ssize_t ret = 0;
	u32 effect;
	u8 b;

	if (pos)
		return -ESPIPE;

	vme_migf_sleep_init(migf, &sl);
	/* Another call may hold the lock through a DELAY: wait killably. */
	if (mutex_lock_killable(&migf->lock))
		return -EINTR;
	if (migf->disabled) {
		/* Quirk stale-fd-readable: an ended session reads as EOF. */
		ret = migf->stale ? 0 : -ENODEV;
		goto out_unlock;
	}
	effect = vme_migf_fault_locked(migf, VFIO_MIG_EMU_SITE_READ, &ret,
				       &err_vme, &sl);
	switch (effect) {
	case VFIO_MIG_EMU_EFFECT_FAIL:
	case VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR:
		goto out_unlock;
	case VFIO_MIG_EMU_EFFECT_SHORT_IO:
		len = len > 1 ? len / 2 : len;
		break;
	}

	while (done < len) {
		if (migf->buf_pos == migf->buf_len &&
		    !vme_save_produce_locked(migf)) {
			/*
			 * Temporary end of stream in precopy, EOF otherwise.
			 * Quirks precopy-eof-zero and stopcopy-enomsg swap
			 * the two.
			 */
			if (migf->stop_copy ?
			    vme_quirk(migf->vme,
				      VFIO_MIG_EMU_QUIRK_STOPCOPY_ENOMSG) :
			    !vme_quirk(migf->vme,
				       VFIO_MIG_EMU_QUIRK_PRECOPY_EOF_ZERO))
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
	if (done) {
		ret = done;
		vme_count(migf->vme, VFIO_MIG_EMU_CNT_BYTES_SAVED, done);
	}
	/* CORRUPT: flip the middle byte of what the reader got. */
	if (done && effect == VFIO_MIG_EMU_EFFECT_CORRUPT &&
	    !get_user(b, (u8 __user *)ubuf + done / 2))
		put_user(b ^ 0xff, (u8 __user *)ubuf + done / 2);

out_unlock:
	mutex_unlock(&migf->lock);
	vme_migf_error_put(migf, err_vme, ret);
	return ret;
}

static __poll_t vme_save_poll(struct file *filp, poll_table *wait)
{
	struct vme_migration_file *migf = filp->private_data;
	struct vme_device *vme;
	__poll_t mask = 0;

	poll_wait(filp, &migf->poll_wait, wait);

	if (mutex_lock_killable(&migf->lock))
		return EPOLLERR;
	vme = migf->vme;
	if (migf->disabled) {
		mask = migf->stale ? EPOLLIN | EPOLLRDNORM : EPOLLHUP | EPOLLERR;
	} else if (!migf->stop_copy &&
		   vme_quirk(vme, VFIO_MIG_EMU_QUIRK_POLL_NEVER_READY)) {
		/* Quirk poll-never-ready: precopy data never signalled. */
		mask = 0;
	} else if (migf->stop_copy || migf->buf_pos < migf->buf_len ||
		   migf->phase < VME_SAVE_MEM) {
		/* In stop-copy even the end of stream is readable (EOF). */
		mask = EPOLLIN | EPOLLRDNORM;
	} else {
		mutex_lock(&vme->dev_lock);
		vme_save_sync_locked(migf);
		if (migf->res_sent < vme->nr_res ||
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
	struct vme_device *vme, *err_vme = NULL;
	struct vfio_precopy_info info;
	bool reported = false;
	struct vme_sleep sl;
	ssize_t ret = 0;
	u32 effect;

	if (cmd != VFIO_MIG_GET_PRECOPY_INFO)
		return -ENOTTY;

	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	vme_migf_sleep_init(migf, &sl);
	if (mutex_lock_killable(&migf->lock))
		return -EINTR;
	/*
	 * Valid in PRE_COPY and PRE_COPY_P2P only (quirk
	 * precopy-info-any-state: in STOP_COPY too).
	 */
	if (migf->disabled ||
	    (migf->stop_copy &&
	     !vme_quirk(migf->vme, VFIO_MIG_EMU_QUIRK_PRECOPY_INFO_ANY_STATE))) {
		mutex_unlock(&migf->lock);
		return -EINVAL;
	}
	vme = migf->vme;
	vme_count(vme, VFIO_MIG_EMU_CNT_PRECOPY_QUERIES, 1);
	effect = vme_migf_fault_locked(migf, VFIO_MIG_EMU_SITE_PRECOPY_INFO,
				       &ret, &err_vme, &sl);
	if (effect == VFIO_MIG_EMU_EFFECT_FAIL ||
	    effect == VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR) {
		mutex_unlock(&migf->lock);
		vme_migf_error_put(migf, err_vme, ret);
		return ret;
	}

	vme_save_v2_locked(migf);
	mutex_lock(&vme->dev_lock);
	vme_save_figures_locked(migf, &info.initial_bytes, &info.dirty_bytes,
				true);
	mutex_unlock(&vme->dev_lock);
	/*
	 * v2: flags is an output.  Without the opt-in it is echoed back.
	 * The opt-in is the one in force now (vme_save_v2_locked()).
	 */
	if (migf->v2 &&
	    !vme_quirk(vme, VFIO_MIG_EMU_QUIRK_FLAGS_ECHO_AFTER_V2)) {
		info.flags = migf->reinit_report ? VFIO_PRECOPY_INFO_REINIT : 0;
		reported = true;
	} else if (!migf->v2 && migf->reinit_report &&
		   vme_quirk(vme, VFIO_MIG_EMU_QUIRK_REINIT_WITHOUT_OPTIN)) {
		/* Quirk reinit-without-optin: REINIT set for a v1 user. */
		info.flags = VFIO_PRECOPY_INFO_REINIT;
		reported = true;
	}
	if (effect == VFIO_MIG_EMU_EFFECT_GARBAGE_SIZE) {
		/* Sizes no device could have; consumers must survive them. */
		info.initial_bytes = U64_MAX;
		info.dirty_bytes = U64_MAX;
	}
	trace_vme_precopy_query(vme->uuid, info.initial_bytes,
				info.dirty_bytes, info.flags);

	/*
	 * Copied out under migf->lock (as read() does) so that REINIT counts
	 * as reported only once the caller has it: a query that faults
	 * leaves it pending for the next one.
	 */
	if (copy_to_user((void __user *)arg, &info, minsz)) {
		mutex_unlock(&migf->lock);
		return -EFAULT;
	}
	if (reported)
		migf->reinit_report = false;
	mutex_unlock(&migf->lock);
	return 0;
}

/*
 * DEV_GET's view of a precopy session, changing nothing in it: EINVAL
 * outside PRE_COPY(_P2P), EINTR when a fatal signal ends the wait for it.
 */
int vme_save_precopy_figures(struct vme_migration_file *migf, u64 *initial,
			     u64 *dirty)
{
	int ret = -EINVAL;

	if (mutex_lock_killable(&migf->lock))
		return -EINTR;
	if (!migf->disabled && !migf->stop_copy) {
		mutex_lock(&migf->vme->dev_lock);
		vme_save_figures_locked(migf, initial, dirty, false);
		mutex_unlock(&migf->vme->dev_lock);
		ret = 0;
	}
	mutex_unlock(&migf->lock);
	return ret;
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
	u64 init_mem;

	lockdep_assert_held(&vme->state_mutex);
	migf = vme_migf_alloc(vme, &vme_save_fops, O_RDONLY,
			      "[vfio_mig_emu_save]", true);
	if (IS_ERR(migf))
		return migf;

	/* Not visible to anyone yet: no need for migf->lock. */
	migf->stop_copy = stop_copy;
	migf->v2 = READ_ONCE(vme->precopy_v2) ||
		   vme_core_precopy_v2(&vme->vdev);
	migf->reinit_policy = vme->knobs.reinit_policy;
	migf->res_ctx = vme->knobs.resource_bytes;
	migf->res_rec = vme_resource_record_bytes(migf->res_ctx);
	mutex_lock(&vme->dev_lock);
	vme->res_changed = false;
	vme_dirty_start_locked(vme);
	/*
	 * The memory there is now is initial data: the uAPI's dirty_bytes
	 * "starts at zero" and counts only what changes from here on.
	 */
	bitmap_copy(migf->init_map, vme->dirty, vme->nr_pages);
	init_mem = vme_mem_stream_bytes(migf->init_map, vme->nr_pages);
	migf->initial_res = vme->nr_res;
	vme->saving_migf = migf;
	mutex_unlock(&vme->dev_lock);
	migf->initial_total = VME_HDR_SIZE + VME_REC_SIZE + VME_CONFIG_SIZE +
			      (u64)migf->initial_res * migf->res_rec + init_mem;
	return migf;
}

void vme_save_enter_stop_copy(struct vme_migration_file *migf)
{
	vme_migf_lock_urgent(migf);
	migf->stop_copy = true;
	mutex_unlock(&migf->lock);
	vme_migf_wake(migf);
}

#define VME_FINAL_BYTES	(3 * VME_REC_SIZE + VME_CONFIG_SIZE + VME_REGS_SIZE)

/*
 * *@remaining: bytes a saving session still has to deliver if it went
 * stop-copy now.  -EINTR when a fatal signal ends the wait for the session
 * (a read may hold it through a DELAY).
 */
int vme_save_remaining(struct vme_migration_file *migf, u64 *remaining)
{
	struct vme_device *vme;
	u64 rem;

	*remaining = 0;
	if (mutex_lock_killable(&migf->lock))
		return -EINTR;
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
		rem += (u64)(vme->nr_res - migf->res_sent) * migf->res_rec;
		rem += vme_save_mem_bytes_locked(migf, true, true, true);
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
	*remaining = rem;
	return 0;
}

/* Size of a whole stop-copy stream of the current state. */
u64 vme_stop_copy_bytes_dev_locked(struct vme_device *vme)
{
	lockdep_assert_held(&vme->dev_lock);
	return VME_HDR_SIZE + VME_REC_SIZE + VME_CONFIG_SIZE +
	       (u64)vme->nr_res *
	       vme_resource_record_bytes(vme->knobs.resource_bytes) +
	       vme_mem_stream_bytes(vme->present, vme->nr_pages) +
	       VME_FINAL_BYTES;
}

u64 vme_stop_copy_bytes_locked(struct vme_device *vme)
{
	u64 bytes;

	lockdep_assert_held(&vme->state_mutex);
	mutex_lock(&vme->dev_lock);
	bytes = vme_stop_copy_bytes_dev_locked(vme);
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

static int vme_resume_apply_locked(struct vme_migration_file *migf,
				   struct vme_sleep *sl)
{
	struct vfio_mig_emu_record *rec = (void *)migf->buf;
	void *payload = migf->buf + VME_REC_SIZE;
	const struct vfio_mig_emu_resource *res = payload;
	u32 page_crcs[VME_PAGES_PER_REC];
	u32 len = le32_to_cpu(rec->length);
	struct vme_device *vme = migf->vme;
	const char *why = NULL;
	u64 cost_ns = 0;
	int ret;

	lockdep_assert_held(&migf->lock);
	ret = vme_record_check_crc(rec, payload, page_crcs, &why);
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
					  le32_to_cpu(rec->length), page_crcs,
					  &why);
		break;
	case VFIO_MIG_EMU_REC_RESOURCE:
		if (!vme_resource_context_ok(le64_to_cpu(res->cookie),
					     payload + VME_RES_SIZE,
					     len - VME_RES_SIZE)) {
			why = "RESOURCE context does not match its cookie";
			ret = -EINVAL;
			break;
		}
		ret = vme_load_resource_locked(vme, res, &why);
		/* The destination's cost of loading critical data. */
		cost_ns = (u64)vme->knobs.load_us_per_resource * NSEC_PER_USEC +
			  (u64)vme->knobs.load_ns_per_kib * len / 1024;
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
	vme_sleep(sl, min_t(u64, DIV_ROUND_UP_ULL(cost_ns, NSEC_PER_USEC),
			    VFIO_MIG_EMU_MAX_DELAY_US));

	migf->seq++;
	migf->buf_len = 0;
	if (le16_to_cpu(rec->type) == VFIO_MIG_EMU_REC_END)
		vme_resume_expect_locked(migf, VME_LOAD_DONE, 0);
	else
		vme_resume_expect_locked(migf, VME_LOAD_RECORD, VME_REC_SIZE);
	return 0;
}

/* The parse buffer holds buf_pos bytes: act on them. */
static int vme_resume_consume_locked(struct vme_migration_file *migf,
				     struct vme_sleep *sl)
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
		return vme_resume_apply_locked(migf, sl);

	case VME_LOAD_DONE:
		break;
	}
	return vme_resume_fail_locked(migf, "data after END record", -EINVAL);
}

static ssize_t vme_resume_write(struct file *filp, const char __user *ubuf,
				size_t len, loff_t *pos)
{
	struct vme_migration_file *migf = filp->private_data;
	struct vme_device *err_vme = NULL;
	size_t done = 0, chunk;
	struct vme_sleep sl;
	ssize_t ret = 0;
	u32 effect;

	if (pos)
		return -ESPIPE;

	/* One budget for the call: its DELAY and every record's load cost. */
	vme_migf_sleep_init(migf, &sl);
	if (mutex_lock_killable(&migf->lock))
		return -EINTR;
	if (migf->disabled) {
		ret = -ENODEV;
		goto out_unlock;
	}
	if (migf->broken) {
		ret = -EINVAL;
		goto out_unlock;
	}
	effect = vme_migf_fault_locked(migf, VFIO_MIG_EMU_SITE_WRITE, &ret,
				       &err_vme, &sl);
	switch (effect) {
	case VFIO_MIG_EMU_EFFECT_FAIL:
	case VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR:
		goto out_unlock;
	case VFIO_MIG_EMU_EFFECT_SHORT_IO:
		len = len > 1 ? len / 2 : len;
		break;
	}

	while (done < len) {
		if (migf->stage == VME_LOAD_DONE &&
		    vme_quirk(migf->vme, VFIO_MIG_EMU_QUIRK_WRITE_AFTER_END)) {
			/* Quirk write-after-end: bytes after END swallowed. */
			done = len;
			break;
		}
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
		/* CORRUPT: flip a byte of the first chunk before parsing. */
		if (effect == VFIO_MIG_EMU_EFFECT_CORRUPT && !done)
			migf->buf[migf->buf_len + chunk / 2] ^= 0xff;
		migf->buf_len += chunk;
		done += chunk;
		if (migf->buf_len == migf->buf_pos) {
			ret = vme_resume_consume_locked(migf, &sl);
			if (ret)
				goto out_unlock;
		}
	}
	ret = done;

out_unlock:
	if (ret > 0 && migf->vme)
		vme_count(migf->vme, VFIO_MIG_EMU_CNT_BYTES_LOADED, ret);
	mutex_unlock(&migf->lock);
	vme_migf_error_put(migf, err_vme, ret);
	return ret;
}

/*
 * Writable while the session lives (a rejected stream still accepts the
 * call, which fails -EINVAL: EPOLLERR); once it ended, EPOLLHUP|EPOLLERR
 * as for the saving file, so a waiter learns the session is gone.
 */
static __poll_t vme_resume_poll(struct file *filp, poll_table *wait)
{
	struct vme_migration_file *migf = filp->private_data;
	__poll_t mask;

	poll_wait(filp, &migf->poll_wait, wait);
	if (mutex_lock_killable(&migf->lock))
		return EPOLLERR;
	if (migf->disabled)
		mask = EPOLLHUP | EPOLLERR;
	else if (migf->broken)
		mask = EPOLLOUT | EPOLLWRNORM | EPOLLERR;
	else
		mask = EPOLLOUT | EPOLLWRNORM;
	mutex_unlock(&migf->lock);
	return mask;
}

static const struct file_operations vme_resume_fops = {
	.owner = THIS_MODULE,
	.write = vme_resume_write,
	.poll = vme_resume_poll,
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

	vme_migf_lock_urgent(migf);
	if (migf->broken) {
		*why = migf->why;
		ret = -EINVAL;
	} else if (migf->stage != VME_LOAD_DONE &&
		   !vme_quirk(migf->vme,
			      VFIO_MIG_EMU_QUIRK_TRUNCATED_RESUME_OK)) {
		*why = "stream incomplete: no END record";
		ret = -EINVAL;
	}
	mutex_unlock(&migf->lock);
	return ret;
}
