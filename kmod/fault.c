// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_mig_emu: fault injection.  Each device keeps its own list of faults
 * (at most VFIO_MIG_EMU_MAX_FAULTS); a hook at each site asks
 * vme_fault_check() whether one fires.  Every fault matching the site (and,
 * for SET_STATE, the arc) counts the call; the first whose trigger fires is
 * applied and counted as a hit.  DELAY is carried out here; the caller
 * carries out the other effects.
 */
#include <linux/atomic.h>
#include <linux/hrtimer.h>
#include <linux/sched/signal.h>
#include <linux/list.h>
#include <linux/slab.h>
#include <linux/wait.h>

#include "vme.h"
#include "trace.h"

/*
 * Sleep @us microseconds of CLOCK_MONOTONIC, interruptibly (a signal cuts
 * it short: never a hung task), at most what is left of @sl's budget
 * (taken from it), and, when @sl has a wait queue, only until someone
 * raises @sl->abort (and wakes the queue): a caller that must have the
 * lock this sleep is taken under.  An hrtimer rather than msleep():
 * jiffies can run ahead of CLOCK_MONOTONIC in an emulated guest, and
 * userspace measures delays with the latter.
 */
void vme_sleep(struct vme_sleep *sl, u32 us)
{
	ktime_t start = ktime_get(), end;
	s64 slept;

	us = min(us, sl->budget_us);
	if (!us)
		return;
	end = ktime_add_us(start, us);
	if (sl->wq) {
		wait_event_interruptible_hrtimeout(*sl->wq,
						   atomic_read(sl->abort),
						   ktime_sub(end, start));
	} else {
		while (!signal_pending(current) &&
		       ktime_before(ktime_get(), end)) {
			set_current_state(TASK_INTERRUPTIBLE);
			schedule_hrtimeout_range(&end, 0, HRTIMER_MODE_ABS);
		}
		__set_current_state(TASK_RUNNING);
	}
	slept = ktime_us_delta(ktime_get(), start);
	sl->budget_us -= min_t(s64, max_t(s64, slept, 0), sl->budget_us);
}

void vme_faults_init(struct vme_device *vme)
{
	mutex_init(&vme->fault_lock);
	INIT_LIST_HEAD(&vme->faults);
	vme->nr_faults = 0;
	vme->next_fault_id = 1;
}

void vme_faults_fini(struct vme_device *vme)
{
	vme_fault_clear(vme, 0, true);
	mutex_destroy(&vme->fault_lock);
}

/* splitmix64, the fault's own PRNG for TRIGGER_RANDOM. */
static u64 vme_fault_draw_locked(struct vme_device *vme, struct vme_fault *f)
{
	lockdep_assert_held(&vme->fault_lock);
	return vfio_mig_emu_splitmix64(&f->prng);
}

static bool vme_fault_match(const struct vme_fault *f, u32 site, u32 from,
			    u32 to)
{
	if (f->site != site)
		return false;
	if (site != VFIO_MIG_EMU_SITE_SET_STATE)
		return true;
	return (f->from == VFIO_MIG_EMU_ANY_STATE || f->from == from) &&
	       (f->to == VFIO_MIG_EMU_ANY_STATE || f->to == to);
}

/* Count a call at the fault's site; true when its trigger fires. */
static bool vme_fault_triggers_locked(struct vme_device *vme,
				      struct vme_fault *f)
{
	lockdep_assert_held(&vme->fault_lock);
	f->calls++;
	switch (f->trigger) {
	case VFIO_MIG_EMU_TRIGGER_NTH:
		return f->calls == f->n;
	case VFIO_MIG_EMU_TRIGGER_EVERY_NTH:
		return f->calls % f->n == 0;
	case VFIO_MIG_EMU_TRIGGER_FIRST_N:
		return f->calls <= f->n;
	case VFIO_MIG_EMU_TRIGGER_RANDOM:
		return (vme_fault_draw_locked(vme, f) >> 32) % 1000000 < f->ppm;
	}
	return false;
}

/*
 * A call at @site (for SET_STATE, the arc @from -> @to).  Returns the
 * effect the caller must apply (0: none; DELAY has already been slept,
 * through @sl, see vme_sleep()) and fills @act.  May sleep; called with
 * any of the device's locks above fault_lock held.
 */
int vme_fault_check_sleep(struct vme_device *vme, u32 site, u32 from, u32 to,
			  struct vme_fault_act *act, struct vme_sleep *sl)
{
	struct vme_fault *f, *fired = NULL;
	u32 delay_us = 0;

	act->effect = 0;
	act->err = 0;
	mutex_lock(&vme->fault_lock);
	list_for_each_entry(f, &vme->faults, node) {
		if (!vme_fault_match(f, site, from, to))
			continue;
		if (vme_fault_triggers_locked(vme, f) && !fired) {
			fired = f;
			f->hits++;
			act->effect = f->effect;
			act->err = -(int)f->err;
			delay_us = f->delay_us;
		}
	}
	if (fired) {
		vme_count(vme, VFIO_MIG_EMU_CNT_FAULTS_HIT, 1);
		trace_vme_fault_fired(vme->uuid, fired->id, site, fired->effect,
				      fired->err);
		vme_event_fault(vme, fired, from, to);
	}
	mutex_unlock(&vme->fault_lock);

	if (act->effect == VFIO_MIG_EMU_EFFECT_DELAY) {
		vme_sleep(sl, delay_us);
		act->effect = 0;
	}
	return act->effect;
}

/* vme_fault_check_sleep() for a call whose DELAY nobody cuts short. */
int vme_fault_check(struct vme_device *vme, u32 site, u32 from, u32 to,
		    struct vme_fault_act *act)
{
	struct vme_sleep sl = { .budget_us = VFIO_MIG_EMU_MAX_DELAY_US };

	return vme_fault_check_sleep(vme, site, from, to, act, &sl);
}

/*
 * @f is validated and owned by the list on success; @added receives a
 * copy of it as added, taken under fault_lock: once @f is on the list a
 * call at its site may count it and FAULT_CLEAR may free it.
 */
int vme_fault_add(struct vme_device *vme, struct vme_fault *f,
		  struct vme_fault *added)
{
	int ret = 0;

	mutex_lock(&vme->fault_lock);
	if (vme->nr_faults >= VFIO_MIG_EMU_MAX_FAULTS) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	f->id = vme->next_fault_id++;
	f->prng = f->seed;
	f->calls = 0;
	f->hits = 0;
	list_add_tail(&f->node, &vme->faults);
	vme->nr_faults++;
	*added = *f;
out_unlock:
	mutex_unlock(&vme->fault_lock);
	return ret;
}

/* Remove fault @id, or every fault when @all; -ENOENT if @id is unknown. */
int vme_fault_clear(struct vme_device *vme, u32 id, bool all)
{
	struct vme_fault *f, *tmp;
	int ret = all ? 0 : -ENOENT;

	mutex_lock(&vme->fault_lock);
	list_for_each_entry_safe(f, tmp, &vme->faults, node) {
		if (!all && f->id != id)
			continue;
		list_del(&f->node);
		kfree(f);
		vme->nr_faults--;
		ret = 0;
	}
	mutex_unlock(&vme->fault_lock);
	return ret;
}
