// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_mig_emu: the migration state machine (vfio_migration_ops), device
 * reset and the open/close hooks that start and end data sessions.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/vfio.h>

#include "vme.h"

/* End the saving and resuming sessions, if any: their fds get -ENODEV. */
static void vme_disable_files_locked(struct vme_device *vme)
{
	struct vme_migration_file *migf;

	lockdep_assert_held(&vme->state_mutex);

	migf = vme->saving_migf;
	if (migf) {
		mutex_lock(&vme->dev_lock);
		vme->saving_migf = NULL;
		mutex_unlock(&vme->dev_lock);
		vme_migf_disable(migf);
		fput(vme_migf_file(migf));
		vme_event_session(vme, VFIO_MIG_EMU_SESSION_SAVING, false);
	}

	migf = vme->resuming_migf;
	if (migf) {
		WRITE_ONCE(vme->resuming_migf, NULL);
		vme_migf_disable(migf);
		fput(vme_migf_file(migf));
		vme_event_session(vme, VFIO_MIG_EMU_SESSION_RESUMING, false);
	}
}

/* Sessions end and the device goes to ERROR (content kept). */
void vme_error_locked(struct vme_device *vme)
{
	lockdep_assert_held(&vme->state_mutex);
	vme_disable_files_locked(vme);
	vme_set_mig_state_locked(vme, VFIO_DEVICE_STATE_ERROR);
	vme_dirty_work_update_locked(vme);
}

/*
 * A FAIL_TO_ERROR fault fired outside SET MIG_DEVICE_STATE: the caller
 * holds no lock of the device, and a reference on it.  @migf is the data
 * session the fault fired in (the caller holds its file), NULL for the
 * device's own sites (reset).  The fault was decided before state_mutex
 * was taken here: if @migf has ended meanwhile (a SET left the saving
 * group, a reset), the device has moved on and the stale fault must not
 * send its new state to ERROR.
 */
void vme_fault_to_error(struct vme_device *vme, int err,
			struct vme_migration_file *migf)
{
	u32 from;

	/*
	 * Killable: the holder may sleep arc delays (up to
	 * VFIO_MIG_EMU_MAX_DELAY_US per SET).  A caller killed meanwhile
	 * never sees its call's result; the device stays as it is.
	 */
	if (mutex_lock_killable(&vme->state_mutex))
		return;
	if (migf && migf != vme->saving_migf && migf != vme->resuming_migf)
		goto out_unlock;
	from = vme->mig_state;
	if (from != VFIO_DEVICE_STATE_ERROR) {
		vme_error_locked(vme);
		vme_event_state(vme, from, VFIO_DEVICE_STATE_ERROR, err,
				VFIO_DEVICE_STATE_ERROR);
	}
out_unlock:
	vme_state_mutex_unlock(vme);
}

/* Reset: sessions end, the device returns to power-on state, RUNNING. */
static void vme_reset_locked(struct vme_device *vme)
{
	lockdep_assert_held(&vme->state_mutex);
	vme_disable_files_locked(vme);
	mutex_lock(&vme->dev_lock);
	vme_device_reset_locked(vme);
	vme->mig_state = VFIO_DEVICE_STATE_RUNNING;
	mutex_unlock(&vme->dev_lock);
}

/*
 * Release state_mutex, first running a reset that was requested while it
 * was held (deferred_reset).  Every holder of state_mutex unlocks through
 * here, so a reset is never lost and never runs under a caller's locks.
 */
void vme_state_mutex_unlock(struct vme_device *vme)
{
again:
	spin_lock(&vme->reset_lock);
	if (vme->deferred_reset) {
		u32 from = vme->mig_state;

		vme->deferred_reset = false;
		spin_unlock(&vme->reset_lock);
		vme_reset_locked(vme);
		/*
		 * Quirk reset-keeps-state: the reset clears the device but
		 * forgets the migration state (never a saving or resuming
		 * state: their sessions are gone).
		 */
		if (vme_quirk(vme, VFIO_MIG_EMU_QUIRK_RESET_KEEPS_STATE) &&
		    (from == VFIO_DEVICE_STATE_ERROR ||
		     from == VFIO_DEVICE_STATE_STOP ||
		     from == VFIO_DEVICE_STATE_RUNNING_P2P))
			vme_set_mig_state_locked(vme, from);
		vme_count(vme, VFIO_MIG_EMU_CNT_RESETS, 1);
		vme_event_reset(vme, from);
		vme_dirty_work_update_locked(vme);
		goto again;
	}
	mutex_unlock(&vme->state_mutex);
	spin_unlock(&vme->reset_lock);
}

/*
 * VFIO_DEVICE_RESET, from any state including ERROR.  The reset is queued
 * and run by whoever releases state_mutex next; taking the mutex here
 * makes sure that has happened before the ioctl returns.  A fatal signal
 * ends that wait with -EINTR, the reset still queued.
 */
int vme_reset(struct vme_device *vme)
{
	struct vme_fault_act act;

	switch (vme_fault_check(vme, VFIO_MIG_EMU_SITE_RESET, 0, 0, &act)) {
	case VFIO_MIG_EMU_EFFECT_FAIL:
		return act.err;
	case VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR:
		vme_fault_to_error(vme, act.err, NULL);
		return act.err;
	}

	spin_lock(&vme->reset_lock);
	vme->deferred_reset = true;
	spin_unlock(&vme->reset_lock);
	if (mutex_lock_killable(&vme->state_mutex))
		return -EINTR;
	vme_state_mutex_unlock(vme);
	return 0;
}

/* open_device: a freshly opened device is reset and RUNNING. */
void vme_open_locked(struct vme_device *vme)
{
	lockdep_assert_held(&vme->state_mutex);
	vme_reset_locked(vme);
	WRITE_ONCE(vme->opened, true);
	vme_dirty_work_update_locked(vme);
}

/*
 * close_device: every session ends; nothing may touch the device after.
 * The background workload takes dev_lock only, so it is cancelled here.
 * It cannot fail, so it waits for state_mutex uninterruptibly; no SET can
 * hold it (no ioctl runs on a device being closed), only short holders
 * (KNOBS_SET, a data fd's FAIL_TO_ERROR), and vme_migf_disable() cuts a
 * data fd's sleep short.
 */
void vme_close(struct vme_device *vme)
{
	mutex_lock(&vme->state_mutex);
	vme_disable_files_locked(vme);
	WRITE_ONCE(vme->precopy_v2, false);
	WRITE_ONCE(vme->opened, false);
	cancel_delayed_work_sync(&vme->dirty_work);
	vme_state_mutex_unlock(vme);
}

static struct file *vme_start_saving_locked(struct vme_device *vme,
					    bool stop_copy)
{
	struct vme_migration_file *migf;
	struct file *filp;

	lockdep_assert_held(&vme->state_mutex);
	migf = vme_save_file_create(vme, stop_copy);
	if (IS_ERR(migf))
		return ERR_CAST(migf);
	filp = vme_migf_file(migf);
	/* One reference for the device (dropped on disable), one for the fd. */
	get_file(filp);
	vme_event_session(vme, VFIO_MIG_EMU_SESSION_SAVING, true);
	return filp;
}

/* RESUMING -> STOP: accept the loaded state or discard it and go ERROR. */
static struct file *vme_finish_resuming_locked(struct vme_device *vme)
{
	struct vme_migration_file *migf = vme->resuming_migf;
	const char *why = "no resuming session";
	int ret = -EINVAL;

	lockdep_assert_held(&vme->state_mutex);
	if (migf)
		ret = vme_resume_finish(migf, &why);
	vme_disable_files_locked(vme);
	if (!ret)
		return NULL;

	dev_warn_ratelimited(vme->vdev.dev,
			     "RESUMING -> STOP refused, device in ERROR: %s\n",
			     why);
	mutex_lock(&vme->dev_lock);
	vme_device_reset_locked(vme);
	vme->mig_state = VFIO_DEVICE_STATE_ERROR;
	mutex_unlock(&vme->dev_lock);
	return ERR_PTR(ret);
}

/*
 * One arc of the state machine.  vfio_mig_get_next_state() only ever asks
 * for these (those through optional states only when the profile has
 * them):
 *
 *   RUNNING      -> RUNNING_P2P | STOP | PRE_COPY
 *   RUNNING_P2P  -> RUNNING | STOP | PRE_COPY_P2P
 *   STOP         -> RUNNING | RUNNING_P2P | STOP_COPY | RESUMING
 *   PRE_COPY     -> RUNNING | PRE_COPY_P2P | STOP_COPY
 *   PRE_COPY_P2P -> PRE_COPY | RUNNING_P2P | STOP_COPY
 *   STOP_COPY    -> STOP (and PRE_COPY(_P2P) under a quirk)
 *   RESUMING     -> STOP
 *
 * The saving group (PRE_COPY, PRE_COPY_P2P, STOP_COPY) shares one session
 * and one fd; leaving it, or RESUMING, ends the session.
 */
static struct file *vme_step_state_locked(struct vme_device *vme,
					  enum vfio_device_mig_state new)
{
	enum vfio_device_mig_state cur = vme->mig_state;
	struct vme_migration_file *migf;
	struct file *filp;

	lockdep_assert_held(&vme->state_mutex);

	/* The device just stops or resumes (p2p) activity. */
	if (cur == VFIO_DEVICE_STATE_RUNNING &&
	    new == VFIO_DEVICE_STATE_RUNNING_P2P)
		return NULL;
	if (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	    new == VFIO_DEVICE_STATE_RUNNING)
		return NULL;
	if (cur == VFIO_DEVICE_STATE_RUNNING &&
	    new == VFIO_DEVICE_STATE_STOP)
		return NULL;
	if (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	    new == VFIO_DEVICE_STATE_STOP)
		return NULL;
	if (cur == VFIO_DEVICE_STATE_STOP &&
	    new == VFIO_DEVICE_STATE_RUNNING)
		return NULL;
	if (cur == VFIO_DEVICE_STATE_STOP &&
	    new == VFIO_DEVICE_STATE_RUNNING_P2P)
		return NULL;

	/* Within the precopy states the session simply goes on. */
	if (cur == VFIO_DEVICE_STATE_PRE_COPY &&
	    new == VFIO_DEVICE_STATE_PRE_COPY_P2P)
		return NULL;
	if (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	    new == VFIO_DEVICE_STATE_PRE_COPY)
		return NULL;

	/* A precopy saving session starts: new fd. */
	if (cur == VFIO_DEVICE_STATE_RUNNING &&
	    new == VFIO_DEVICE_STATE_PRE_COPY)
		return vme_start_saving_locked(vme, false);
	if (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	    new == VFIO_DEVICE_STATE_PRE_COPY_P2P)
		return vme_start_saving_locked(vme, false);

	/* A stop-copy-only saving session starts: new fd. */
	if (cur == VFIO_DEVICE_STATE_STOP &&
	    new == VFIO_DEVICE_STATE_STOP_COPY)
		return vme_start_saving_locked(vme, true);

	/*
	 * Precopy becomes stop-copy on the same session and fd, so no new
	 * file is returned.  The device stops (writes -EBUSY) before the
	 * stream is told to finish, so nothing changes after the final
	 * snapshot.
	 */
	if ((cur == VFIO_DEVICE_STATE_PRE_COPY ||
	     cur == VFIO_DEVICE_STATE_PRE_COPY_P2P) &&
	    new == VFIO_DEVICE_STATE_STOP_COPY) {
		migf = vme->saving_migf;
		if (WARN_ON(!migf))
			return ERR_PTR(-EINVAL);
		vme_set_mig_state_locked(vme, new);
		vme_save_enter_stop_copy(migf);
		return NULL;
	}

	/* Leaving the saving group ends the session. */
	if (cur == VFIO_DEVICE_STATE_PRE_COPY &&
	    new == VFIO_DEVICE_STATE_RUNNING) {
		vme_disable_files_locked(vme);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	    new == VFIO_DEVICE_STATE_RUNNING_P2P) {
		vme_disable_files_locked(vme);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_STOP_COPY &&
	    new == VFIO_DEVICE_STATE_STOP) {
		vme_disable_files_locked(vme);
		return NULL;
	}

	/* A resuming session starts from a reset device: new fd. */
	if (cur == VFIO_DEVICE_STATE_STOP &&
	    new == VFIO_DEVICE_STATE_RESUMING) {
		mutex_lock(&vme->dev_lock);
		vme_device_reset_locked(vme);
		mutex_unlock(&vme->dev_lock);
		migf = vme_resume_file_create(vme);
		if (IS_ERR(migf))
			return ERR_CAST(migf);
		filp = vme_migf_file(migf);
		get_file(filp);
		WRITE_ONCE(vme->resuming_migf, migf);
		vme_event_session(vme, VFIO_MIG_EMU_SESSION_RESUMING, true);
		return filp;
	}

	/* The resuming session ends; the loaded state is checked. */
	if (cur == VFIO_DEVICE_STATE_RESUMING &&
	    new == VFIO_DEVICE_STATE_STOP)
		return vme_finish_resuming_locked(vme);

	/*
	 * Quirk stopcopy-to-precopy (vme_next_arc_locked() asks for it, the
	 * core never does): the finishing session simply goes on.
	 */
	if (cur == VFIO_DEVICE_STATE_STOP_COPY && vme->saving_migf &&
	    (new == VFIO_DEVICE_STATE_PRE_COPY ||
	     new == VFIO_DEVICE_STATE_PRE_COPY_P2P))
		return NULL;

	/* vfio_mig_get_next_state() does not return other arcs. */
	WARN_ON(true);
	return ERR_PTR(-EINVAL);
}

/*
 * One arc as SET MIG_DEVICE_STATE attempts it: the arc's delay knob, the
 * SET_STATE faults for it, then the step itself.  Both sleeps come out of
 * @sl, the SET's budget: a SET sleeps VFIO_MIG_EMU_MAX_DELAY_US at most in
 * all, interruptibly, however many arcs its path has.
 */
static struct file *vme_arc_locked(struct vme_device *vme,
				   enum vfio_device_mig_state cur,
				   enum vfio_device_mig_state next,
				   struct vme_sleep *sl)
{
	struct vme_fault_act act;

	lockdep_assert_held(&vme->state_mutex);
	vme_sleep(sl, vme->knobs.arc_delay_us[cur][next]);
	switch (vme_fault_check_sleep(vme, VFIO_MIG_EMU_SITE_SET_STATE, cur,
				      next, &act, sl)) {
	case VFIO_MIG_EMU_EFFECT_FAIL:
		return ERR_PTR(act.err);
	case VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR:
		vme_error_locked(vme);
		return ERR_PTR(act.err);
	}
	return vme_step_state_locked(vme, next);
}

/* The twin of a P2P state on a device without P2P (quirk p2p-without-flag). */
static enum vfio_device_mig_state vme_unp2p(enum vfio_device_mig_state s)
{
	if (s == VFIO_DEVICE_STATE_RUNNING_P2P)
		return VFIO_DEVICE_STATE_RUNNING;
	if (s == VFIO_DEVICE_STATE_PRE_COPY_P2P)
		return VFIO_DEVICE_STATE_PRE_COPY;
	return s;
}

/*
 * Quirk failed-arc-off-path: after a failed arc the driver "recovers" to
 * RUNNING (ending any session), wherever the path went.
 */
static void vme_quirk_off_path_locked(struct vme_device *vme,
				      enum vfio_device_mig_state orig)
{
	lockdep_assert_held(&vme->state_mutex);
	if (!vme_quirk(vme, VFIO_MIG_EMU_QUIRK_FAILED_ARC_OFF_PATH) ||
	    vme->mig_state == VFIO_DEVICE_STATE_ERROR ||
	    orig == VFIO_DEVICE_STATE_RUNNING)
		return;
	vme_disable_files_locked(vme);
	vme_set_mig_state_locked(vme, VFIO_DEVICE_STATE_RUNNING);
}

/*
 * The next arc toward @target; the quirks that bend the path apply here.
 * Returns 0 and *@next, 1 when the SET is to stop here reporting success
 * (quirk set-state-noop), or a negative errno.
 */
static int vme_next_arc_locked(struct vme_device *vme,
			       enum vfio_device_mig_state cur,
			       enum vfio_device_mig_state target,
			       enum vfio_device_mig_state *next)
{
	u32 flags = vme->vdev.migration_flags;
	int ret;

	lockdep_assert_held(&vme->state_mutex);
	/* Quirk stopcopy-to-precopy: a finishing session "goes back". */
	if (vme_quirk(vme, VFIO_MIG_EMU_QUIRK_STOPCOPY_TO_PRECOPY) &&
	    (flags & VFIO_MIGRATION_PRE_COPY) &&
	    cur == VFIO_DEVICE_STATE_STOP_COPY &&
	    (target == VFIO_DEVICE_STATE_PRE_COPY ||
	     target == VFIO_DEVICE_STATE_PRE_COPY_P2P)) {
		*next = target;
		return 0;
	}
	ret = vfio_mig_get_next_state(&vme->vdev, cur, target, next);
	if (ret)
		return ret;
	/* Quirk combo-via-saving: stop-copy reached through precopy. */
	if (vme_quirk(vme, VFIO_MIG_EMU_QUIRK_COMBO_VIA_SAVING) &&
	    (flags & VFIO_MIGRATION_PRE_COPY) &&
	    target == VFIO_DEVICE_STATE_STOP_COPY) {
		if (cur == VFIO_DEVICE_STATE_RUNNING)
			*next = VFIO_DEVICE_STATE_PRE_COPY;
		else if (cur == VFIO_DEVICE_STATE_RUNNING_P2P)
			*next = VFIO_DEVICE_STATE_PRE_COPY_P2P;
	}
	/* Quirk set-state-noop: the resume is acknowledged, not done. */
	if (vme_quirk(vme, VFIO_MIG_EMU_QUIRK_SET_STATE_NOOP) &&
	    cur == VFIO_DEVICE_STATE_STOP &&
	    *next == VFIO_DEVICE_STATE_RUNNING && *next == target)
		return 1;
	return 0;
}

static struct file *vme_set_state(struct vfio_device *vdev,
				  enum vfio_device_mig_state new_state)
{
	struct vme_device *vme = to_vme(vdev);
	enum vfio_device_mig_state cur, next, orig, target = new_state;
	struct vme_sleep sl = { .budget_us = VFIO_MIG_EMU_MAX_DELAY_US };
	struct file *res = NULL, *early = NULL;
	bool no_p2p = !(vdev->migration_flags & VFIO_MIGRATION_P2P);
	int ret;

	/* The holder may sleep arc delays: wait killably. */
	if (mutex_lock_killable(&vme->state_mutex))
		return ERR_PTR(-EINTR);
	/*
	 * A device without P2P is in a P2P state only through quirk
	 * p2p-without-flag, where it is an alias of its twin; the core's
	 * path finder must never see it (it would WARN).
	 */
	if (no_p2p && vme_unp2p(vme->mig_state) != vme->mig_state)
		vme_set_mig_state_locked(vme, vme_unp2p(vme->mig_state));
	if (no_p2p && vme_quirk(vme, VFIO_MIG_EMU_QUIRK_P2P_WITHOUT_FLAG))
		target = vme_unp2p(new_state);
	orig = vme->mig_state;

	/*
	 * ERROR cannot be specified as a device state (uapi vfio.h), not even
	 * in ERROR, where the loop below would find nothing to do.
	 */
	if (new_state == VFIO_DEVICE_STATE_ERROR)
		res = ERR_PTR(-EINVAL);
	while (!IS_ERR(res) && vme->mig_state != target) {
		cur = vme->mig_state;
		/* Only VFIO_DEVICE_RESET leaves ERROR. */
		if (cur == VFIO_DEVICE_STATE_ERROR) {
			if (!vme_quirk(vme, VFIO_MIG_EMU_QUIRK_ERROR_EXIT_BY_SET)) {
				res = ERR_PTR(-EINVAL);
				break;
			}
			/* Quirk error-exit-by-set: ERROR is left as STOP. */
			vme_set_mig_state_locked(vme, VFIO_DEVICE_STATE_STOP);
			vme_event_state(vme, cur, VFIO_DEVICE_STATE_STOP, 0,
					VFIO_DEVICE_STATE_STOP);
			continue;
		}
		ret = vme_next_arc_locked(vme, cur, target, &next);
		if (ret > 0)
			break;
		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		res = vme_arc_locked(vme, cur, next, &sl);
		if (IS_ERR(res)) {
			vme_event_state(vme, cur, next, PTR_ERR(res),
					vme->mig_state);
			vme_quirk_off_path_locked(vme, orig);
			break;
		}
		vme_set_mig_state_locked(vme, next);
		vme_count(vme, VFIO_MIG_EMU_CNT_TRANSITIONS, 1);
		vme_event_state(vme, cur, next, 0, next);
		/*
		 * Quirk new-fd-no-session: precopy turning stop-copy hands
		 * out a second fd on the same session.
		 */
		if (!res && next == target && vme->saving_migf &&
		    next == VFIO_DEVICE_STATE_STOP_COPY &&
		    (cur == VFIO_DEVICE_STATE_PRE_COPY ||
		     cur == VFIO_DEVICE_STATE_PRE_COPY_P2P) &&
		    vme_quirk(vme, VFIO_MIG_EMU_QUIRK_NEW_FD_NO_SESSION))
			res = get_file(vme_migf_file(vme->saving_migf));
		/*
		 * Only the last arc of a path may return a file; under quirk
		 * combo-via-saving an interior precopy arc does, and its fd
		 * is handed out at the end.
		 */
		if (res && next != target && !early &&
		    vme_quirk(vme, VFIO_MIG_EMU_QUIRK_COMBO_VIA_SAVING)) {
			early = res;
			res = NULL;
		}
		if (WARN_ON(res && next != target)) {
			fput(res);
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
	if (early) {
		if (!res)
			res = early;
		else
			fput(early);
	}
	/* Quirk p2p-without-flag: the twin reached, report the P2P name. */
	if (!IS_ERR(res) && target != new_state && vme->mig_state == target)
		vme_set_mig_state_locked(vme, new_state);
	if (IS_ERR(res))
		vme_count(vme, VFIO_MIG_EMU_CNT_TRANSITION_ERRORS, 1);
	vme_dirty_work_update_locked(vme);
	vme_state_mutex_unlock(vme);
	return res;
}

static int vme_get_state(struct vfio_device *vdev,
			 enum vfio_device_mig_state *state)
{
	struct vme_device *vme = to_vme(vdev);

	/*
	 * Quirk interior-state-visible: the state is read without waiting
	 * for a SET in progress, which shows its interior steps.
	 */
	if (vme_quirk(vme, VFIO_MIG_EMU_QUIRK_INTERIOR_STATE_VISIBLE)) {
		/* Unlocked on purpose: that is the quirk. */
		*state = data_race(READ_ONCE(vme->mig_state));
		return 0;
	}
	if (mutex_lock_killable(&vme->state_mutex))
		return -EINTR;
	*state = vme->mig_state;
	vme_state_mutex_unlock(vme);
	return 0;
}

static int vme_get_data_size(struct vfio_device *vdev,
			     unsigned long *stop_copy_length)
{
	struct vme_device *vme = to_vme(vdev);
	struct vme_fault_act act;
	int ret = 0;

	if (mutex_lock_killable(&vme->state_mutex))
		return -EINTR;
	switch (vme_fault_check(vme, VFIO_MIG_EMU_SITE_DATA_SIZE, 0, 0,
				&act)) {
	case VFIO_MIG_EMU_EFFECT_FAIL:
		ret = act.err;
		goto out_unlock;
	case VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR:
		ret = act.err;
		if (vme->mig_state != VFIO_DEVICE_STATE_ERROR) {
			u32 from = vme->mig_state;

			vme_error_locked(vme);
			vme_event_state(vme, from, VFIO_DEVICE_STATE_ERROR,
					ret, VFIO_DEVICE_STATE_ERROR);
		}
		goto out_unlock;
	case VFIO_MIG_EMU_EFFECT_GARBAGE_SIZE:
		/* A size no device could have; consumers must survive it. */
		*stop_copy_length = ULONG_MAX;
		goto out_unlock;
	}
	if (vme->saving_migf) {
		u64 rem;

		ret = vme_save_remaining(vme->saving_migf, &rem);
		*stop_copy_length = rem;
		if (ret)
			goto out_unlock;
	} else {
		*stop_copy_length = vme_stop_copy_bytes_locked(vme);
	}
	/* Quirk data-size-low: only half of what will be produced. */
	if (vme_quirk(vme, VFIO_MIG_EMU_QUIRK_DATA_SIZE_LOW))
		*stop_copy_length /= 2;
out_unlock:
	vme_state_mutex_unlock(vme);
	return ret;
}

/*
 * VFIO_DEVICE_FEATURE_MIG_DATA_SIZE where the core passes it through to
 * device_feature (see compat.h): what the core does with the op.
 */
int vme_feature_mig_data_size(struct vfio_device *vdev, u32 flags,
			      void __user *arg, size_t argsz)
{
	struct vfio_device_feature_mig_data_size data_size = {};
	unsigned long stop_copy_length;
	int ret;

	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET,
				 sizeof(data_size));
	if (ret != 1)
		return ret;
	ret = vme_get_data_size(vdev, &stop_copy_length);
	if (ret)
		return ret;
	data_size.stop_copy_length = stop_copy_length;
	if (copy_to_user(arg, &data_size, sizeof(data_size)))
		return -EFAULT;
	return 0;
}

const struct vfio_migration_ops vme_migration_ops = {
	.migration_set_state = vme_set_state,
	.migration_get_state = vme_get_state,
#ifdef HAVE_VFIO_MIG_GET_DATA_SIZE
	.migration_get_data_size = vme_get_data_size,
#endif
};
