// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_mig_emu: the control plane, generic netlink family VFIO_MIG_EMU_NAME
 * (protocol in the uAPI header).  Commands look a device up by uuid and
 * hold a reference on it while they run; events go to the "events"
 * multicast group, per device in order, numbered from 1.
 */
#include <linux/capability.h>
#include <linux/ktime.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/genetlink.h>

#include "vme.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

static struct genl_family vme_genl_family;

enum vme_mcgrp {
	VME_MCGRP_EVENTS,
};

/*
 * Events show every device's state changes, faults and sessions: only
 * CAP_NET_ADMIN may join (see vme_genl_mcast_bind() in compat.h where the
 * core lacks the flag).
 */
static const struct genl_multicast_group vme_mcgrps[] = {
	[VME_MCGRP_EVENTS] = {
		.name = VFIO_MIG_EMU_MCGRP_EVENTS,
		.flags = VME_GENL_MCAST_CAP_NET_ADMIN,
	},
};

/*
 * vme_events_rwsem guards vme_events_on: events are sent only while the
 * family is registered.  Taken for reading innermost (inside event_lock).
 */
static DECLARE_RWSEM(vme_events_rwsem);
static bool vme_events_on;

/* ---- policies --------------------------------------------------------- */

static VME_NLA_RANGE_CONST struct netlink_range_validation vme_delay_range = {
	.max = VFIO_MIG_EMU_MAX_DELAY_US,
};

static VME_NLA_RANGE_CONST struct netlink_range_validation vme_ppm_range = {
	.min = 1,
	.max = 1000000,
};

static VME_NLA_RANGE_CONST struct netlink_range_validation vme_load_ns_range = {
	.max = VFIO_MIG_EMU_MAX_LOAD_NS_PER_KIB,
};

static VME_NLA_RANGE_CONST struct netlink_range_validation vme_load_us_range = {
	.max = VFIO_MIG_EMU_MAX_LOAD_US_PER_RESOURCE,
};

static VME_NLA_RANGE_CONST struct netlink_range_validation vme_mem_range = {
	.min = VFIO_MIG_EMU_MIN_MEM_SIZE,
	.max = VFIO_MIG_EMU_MAX_MEM_SIZE,
};

static VME_NLA_RANGE_CONST struct netlink_range_validation vme_res_bytes_range = {
	.max = VFIO_MIG_EMU_MAX_RESOURCE_BYTES,
};

static VME_NLA_RANGE_CONST struct netlink_range_validation vme_rate_range = {
	.max = VFIO_MIG_EMU_MAX_DIRTY_RATE,
};

static VME_NLA_RANGE_CONST struct netlink_range_validation vme_count_range = {
	.max = VFIO_MIG_EMU_MAX_DIRTY_STEPS,
};

#define VME_UUID_POLICY	{ .type = NLA_NUL_STRING, .len = UUID_STRING_LEN }

/* Inside KNOB_ARC_DELAY: two attributes of the top level, one knob. */
static const struct nla_policy vme_arc_policy[VFIO_MIG_EMU_A_TO_STATE + 1] = {
	[VFIO_MIG_EMU_KNOB_DELAY_US] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &vme_delay_range),
	[VFIO_MIG_EMU_A_FROM_STATE] = { .type = NLA_U32 },
	[VFIO_MIG_EMU_A_TO_STATE] = { .type = NLA_U32 },
};

static const struct nla_policy vme_knob_policy[VFIO_MIG_EMU_KNOB_MAX + 1] = {
	[VFIO_MIG_EMU_KNOB_ARC_DELAY] = NLA_POLICY_NESTED(vme_arc_policy),
	[VFIO_MIG_EMU_KNOB_LOAD_NS_PER_KIB] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &vme_load_ns_range),
	[VFIO_MIG_EMU_KNOB_LOAD_US_PER_RESOURCE] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &vme_load_us_range),
	[VFIO_MIG_EMU_KNOB_MEM_SIZE] =
		NLA_POLICY_FULL_RANGE(NLA_U64, &vme_mem_range),
	[VFIO_MIG_EMU_KNOB_RESOURCE_BYTES] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &vme_res_bytes_range),
	[VFIO_MIG_EMU_KNOB_DIRTY_RATE] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &vme_rate_range),
	[VFIO_MIG_EMU_KNOB_REINIT_POLICY] =
		NLA_POLICY_MAX(NLA_U32, VFIO_MIG_EMU_REINIT_DISCARD),
	[VFIO_MIG_EMU_KNOB_REFUSE_PRECOPY_V2] = NLA_POLICY_MAX(NLA_U32, 1),
};

/* CALLS, HITS and ID are reply-only: rejected in requests. */
static const struct nla_policy vme_fault_policy[VFIO_MIG_EMU_FAULT_MAX + 1] = {
	[VFIO_MIG_EMU_FAULT_SITE] =
		NLA_POLICY_RANGE(NLA_U32, VFIO_MIG_EMU_SITE_SET_STATE,
				 VFIO_MIG_EMU_SITE_OPEN),
	[VFIO_MIG_EMU_FAULT_FROM_STATE] = { .type = NLA_U32 },
	[VFIO_MIG_EMU_FAULT_TO_STATE] = { .type = NLA_U32 },
	[VFIO_MIG_EMU_FAULT_TRIGGER] =
		NLA_POLICY_RANGE(NLA_U32, VFIO_MIG_EMU_TRIGGER_NTH,
				 VFIO_MIG_EMU_TRIGGER_RANDOM),
	[VFIO_MIG_EMU_FAULT_N] = NLA_POLICY_MIN(NLA_U32, 1),
	[VFIO_MIG_EMU_FAULT_PROBABILITY_PPM] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &vme_ppm_range),
	[VFIO_MIG_EMU_FAULT_SEED] = { .type = NLA_U64 },
	[VFIO_MIG_EMU_FAULT_EFFECT] =
		NLA_POLICY_RANGE(NLA_U32, VFIO_MIG_EMU_EFFECT_FAIL,
				 VFIO_MIG_EMU_EFFECT_GARBAGE_SIZE),
	[VFIO_MIG_EMU_FAULT_ERRNO] = NLA_POLICY_RANGE(NLA_U32, 1, 4095),
	[VFIO_MIG_EMU_FAULT_DELAY_US] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &vme_delay_range),
};

/* DEV_GET: A_UUID for a doit; unknown A_QUERY bits get EINVAL. */
static const struct nla_policy vme_dev_get_policy[VFIO_MIG_EMU_A_QUERY + 1] = {
	[VFIO_MIG_EMU_A_UUID] = VME_UUID_POLICY,
	[VFIO_MIG_EMU_A_QUERY] =
		NLA_POLICY_MASK(NLA_U32, VFIO_MIG_EMU_QUERY_ALL),
};

static const struct nla_policy vme_uuid_only_policy[VFIO_MIG_EMU_A_UUID + 1] = {
	[VFIO_MIG_EMU_A_UUID] = VME_UUID_POLICY,
};

static const struct nla_policy vme_knobs_set_policy[VFIO_MIG_EMU_A_KNOBS + 1] = {
	[VFIO_MIG_EMU_A_UUID] = VME_UUID_POLICY,
	[VFIO_MIG_EMU_A_KNOBS] = NLA_POLICY_NESTED(vme_knob_policy),
};

static const struct nla_policy vme_fault_add_policy[VFIO_MIG_EMU_A_FAULT + 1] = {
	[VFIO_MIG_EMU_A_UUID] = VME_UUID_POLICY,
	[VFIO_MIG_EMU_A_FAULT] = NLA_POLICY_NESTED(vme_fault_policy),
};

static const struct nla_policy vme_fault_id_policy[VFIO_MIG_EMU_A_FAULT_ID + 1] = {
	[VFIO_MIG_EMU_A_UUID] = VME_UUID_POLICY,
	[VFIO_MIG_EMU_A_FAULT_ID] = NLA_POLICY_MIN(NLA_U32, 1),
};

static const struct nla_policy
vme_workload_policy[VFIO_MIG_EMU_A_WORKLOAD_COUNT + 1] = {
	[VFIO_MIG_EMU_A_UUID] = VME_UUID_POLICY,
	[VFIO_MIG_EMU_A_WORKLOAD_ACTION] =
		NLA_POLICY_RANGE(NLA_U32, VFIO_MIG_EMU_WORKLOAD_DIRTY,
				 VFIO_MIG_EMU_WORKLOAD_RECONFIG),
	[VFIO_MIG_EMU_A_WORKLOAD_COUNT] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &vme_count_range),
};

/* Unknown quirk bits: EINVAL, extack at A_QUIRKS with the valid mask. */
static const struct nla_policy vme_quirks_set_policy[VFIO_MIG_EMU_A_QUIRKS + 1] = {
	[VFIO_MIG_EMU_A_UUID] = VME_UUID_POLICY,
	[VFIO_MIG_EMU_A_QUIRKS] =
		NLA_POLICY_MASK(NLA_U64, VFIO_MIG_EMU_QUIRKS_ALL),
};

static const struct nla_policy vme_quirks_get_policy[VFIO_MIG_EMU_A_UUID + 1] = {
	[VFIO_MIG_EMU_A_UUID] = VME_UUID_POLICY,
};

/* ---- device lookup ---------------------------------------------------- */

/* A required attribute is missing: extack names it (text and type). */
#define VME_REQ_ATTR(info, type) ({					\
	bool __miss = GENL_REQ_ATTR_CHECK(info, type);			\
									\
	if (__miss)							\
		NL_SET_ERR_MSG_FMT((info)->extack,			\
				   "missing attribute " #type);		\
	__miss;								\
})

/*
 * The device named by A_UUID, with a reference the caller drops with
 * vfio_put_device().  The reference keeps the memory alive if the
 * instance is removed meanwhile; rmmod unregisters the family first.
 */
static struct vme_device *vme_nl_get_device(struct genl_info *info)
{
	struct nlattr *attr = info->attrs[VFIO_MIG_EMU_A_UUID];
	struct vme_device *vme;
	const char *uuid;

	if (VME_REQ_ATTR(info, VFIO_MIG_EMU_A_UUID))
		return ERR_PTR(-EINVAL);
	uuid = nla_data(attr);
	if (strnlen(uuid, nla_len(attr)) != UUID_STRING_LEN ||
	    !uuid_is_valid(uuid)) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr,
				    "not a uuid (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
		return ERR_PTR(-EINVAL);
	}

	mutex_lock(&vme_devices_lock);
	list_for_each_entry(vme, &vme_devices, node) {
		if (!strcasecmp(vme->uuid, uuid)) {
			get_device(&vme->vdev.device);
			mutex_unlock(&vme_devices_lock);
			return vme;
		}
	}
	mutex_unlock(&vme_devices_lock);
	NL_SET_ERR_MSG_ATTR_FMT(info->extack, attr,
				"no vfio_mig_emu device %s", uuid);
	return ERR_PTR(-ENODEV);
}

/* ---- replies ---------------------------------------------------------- */

static int vme_nl_put_knobs(struct sk_buff *skb, const struct vme_knobs *k,
			    u64 mem_size)
{
	struct nlattr *nest, *arc;
	u32 from, to;

	nest = nla_nest_start(skb, VFIO_MIG_EMU_A_KNOBS);
	if (!nest)
		return -EMSGSIZE;
	for (from = 0; from < VME_NR_STATES; from++) {
		for (to = 0; to < VME_NR_STATES; to++) {
			if (!k->arc_delay_us[from][to])
				continue;
			arc = nla_nest_start(skb, VFIO_MIG_EMU_KNOB_ARC_DELAY);
			if (!arc ||
			    nla_put_u32(skb, VFIO_MIG_EMU_A_FROM_STATE, from) ||
			    nla_put_u32(skb, VFIO_MIG_EMU_A_TO_STATE, to) ||
			    nla_put_u32(skb, VFIO_MIG_EMU_KNOB_DELAY_US,
					k->arc_delay_us[from][to]))
				goto err_cancel;
			nla_nest_end(skb, arc);
		}
	}
	if (nla_put_u32(skb, VFIO_MIG_EMU_KNOB_LOAD_NS_PER_KIB,
			k->load_ns_per_kib) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_KNOB_LOAD_US_PER_RESOURCE,
			k->load_us_per_resource) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_EMU_KNOB_MEM_SIZE, mem_size,
			      VFIO_MIG_EMU_KNOB_PAD) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_KNOB_RESOURCE_BYTES,
			k->resource_bytes) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_KNOB_DIRTY_RATE, k->dirty_rate) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_KNOB_REINIT_POLICY,
			k->reinit_policy) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_KNOB_REFUSE_PRECOPY_V2,
			k->refuse_precopy_v2))
		goto err_cancel;
	nla_nest_end(skb, nest);
	return 0;

err_cancel:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

static int vme_nl_put_fault(struct sk_buff *skb, const struct vme_fault *f)
{
	struct nlattr *nest;

	nest = nla_nest_start(skb, VFIO_MIG_EMU_A_FAULT);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, VFIO_MIG_EMU_FAULT_ID, f->id) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_FAULT_SITE, f->site) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_FAULT_TRIGGER, f->trigger) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_FAULT_EFFECT, f->effect) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_EMU_FAULT_CALLS, f->calls,
			      VFIO_MIG_EMU_FAULT_PAD) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_EMU_FAULT_HITS, f->hits,
			      VFIO_MIG_EMU_FAULT_PAD))
		goto err_cancel;
	if (f->site == VFIO_MIG_EMU_SITE_SET_STATE &&
	    (nla_put_u32(skb, VFIO_MIG_EMU_FAULT_FROM_STATE, f->from) ||
	     nla_put_u32(skb, VFIO_MIG_EMU_FAULT_TO_STATE, f->to)))
		goto err_cancel;
	if (f->trigger == VFIO_MIG_EMU_TRIGGER_RANDOM) {
		if (nla_put_u32(skb, VFIO_MIG_EMU_FAULT_PROBABILITY_PPM, f->ppm) ||
		    nla_put_u64_64bit(skb, VFIO_MIG_EMU_FAULT_SEED, f->seed,
				      VFIO_MIG_EMU_FAULT_PAD))
			goto err_cancel;
	} else if (nla_put_u32(skb, VFIO_MIG_EMU_FAULT_N, f->n)) {
		goto err_cancel;
	}
	if (f->err && nla_put_u32(skb, VFIO_MIG_EMU_FAULT_ERRNO, f->err))
		goto err_cancel;
	if (f->effect == VFIO_MIG_EMU_EFFECT_DELAY &&
	    nla_put_u32(skb, VFIO_MIG_EMU_FAULT_DELAY_US, f->delay_us))
		goto err_cancel;
	nla_nest_end(skb, nest);
	return 0;

err_cancel:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

static int vme_nl_put_counters(struct sk_buff *skb, struct vme_device *vme)
{
	struct nlattr *nest;
	unsigned int i;

	nest = nla_nest_start(skb, VFIO_MIG_EMU_A_COUNTERS);
	if (!nest)
		return -EMSGSIZE;
	for (i = VFIO_MIG_EMU_CNT_TRANSITIONS; i <= VFIO_MIG_EMU_CNT_MAX; i++) {
		if (nla_put_u64_64bit(skb, i, atomic64_read(&vme->counters[i]),
				      VFIO_MIG_EMU_CNT_PAD)) {
			nla_nest_cancel(skb, nest);
			return -EMSGSIZE;
		}
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int vme_nl_put_kmem(struct sk_buff *skb, struct vme_device *vme)
{
	struct nlattr *nest;
	int i;

	nest = nla_nest_start(skb, VFIO_MIG_EMU_A_KMEM);
	if (!nest)
		return -EMSGSIZE;
	for (i = VFIO_MIG_EMU_KMEM_PAGES; i <= VFIO_MIG_EMU_KMEM_MAX; i++)
		if (nla_put_u64_64bit(skb, i, atomic64_read(&vme->kmem[i]),
				      VFIO_MIG_EMU_KMEM_PAD))
			return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

/*
 * What DEV_GET reports, gathered without holding state_mutex.  A query:
 * it changes nothing, and reads every page (the digest) only when asked.
 */
struct vme_nl_snapshot {
	u32 query;			/* VFIO_MIG_EMU_QUERY_* asked for */
	u32 state;
	u64 mem_size;
	u32 digest;
	u32 nr_res;
	u32 sessions;
	bool opened;
	bool precopy;
	u64 initial_bytes;
	u64 dirty_bytes;
	u64 stop_copy_bytes;
	struct vme_knobs knobs;
};

static void vme_nl_snapshot(struct vme_device *vme, struct vme_nl_snapshot *s,
			    u32 query)
{
	struct file *saving = NULL;
	struct vme_migration_file *migf;

	memset(s, 0, sizeof(*s));
	s->query = query;
	mutex_lock(&vme->dev_lock);
	s->state = vme->mig_state;
	s->mem_size = vme->mem_size;
	if (query & VFIO_MIG_EMU_QUERY_DIGEST)
		s->digest = vme_digest_locked(vme);
	s->nr_res = vme->nr_res;
	s->knobs = vme->knobs;
	/* The device's reference on the file is held while it is set. */
	migf = vme->saving_migf;
	if (migf) {
		saving = get_file(vme_migf_file(migf));
		s->sessions++;
	} else {
		s->stop_copy_bytes = vme_stop_copy_bytes_dev_locked(vme);
	}
	mutex_unlock(&vme->dev_lock);
	/* Racy snapshot, for display only. */
	if (data_race(vme->resuming_migf))
		s->sessions++;
	s->opened = READ_ONCE(vme->opened);

	/*
	 * The session's figures as its last read or precopy query left them
	 * (no REINIT is drawn on its behalf).  Waiting for the session (a
	 * read may sleep a DELAY fault) holds up this caller only: the
	 * family runs commands in parallel.
	 */
	if (saving) {
		s->precopy = !vme_save_precopy_figures(migf, &s->initial_bytes,
						       &s->dirty_bytes);
		vme_save_remaining(migf, &s->stop_copy_bytes);
		fput(saving);
	}
}

static int vme_nl_fill_device(struct sk_buff *skb, struct vme_device *vme,
			      u32 portid, u32 seq, int flags, u32 query)
{
	struct vme_nl_snapshot s;
	struct nlattr *nest;
	void *hdr;

	vme_nl_snapshot(vme, &s, query);
	hdr = genlmsg_put(skb, portid, seq, &vme_genl_family, flags,
			  VFIO_MIG_EMU_CMD_DEV_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_string(skb, VFIO_MIG_EMU_A_UUID, vme->uuid) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_A_PROFILE, vme->profile) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_A_STATE, s.state) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_EMU_A_MEM_SIZE, s.mem_size,
			      VFIO_MIG_EMU_A_PAD) ||
	    nla_put_u8(skb, VFIO_MIG_EMU_A_DEVICE_OPEN, s.opened) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_A_SESSIONS, s.sessions) ||
	    ((s.query & VFIO_MIG_EMU_QUERY_DIGEST) &&
	     nla_put_u32(skb, VFIO_MIG_EMU_A_DIGEST, s.digest)) ||
	    nla_put_u32(skb, VFIO_MIG_EMU_A_NR_RESOURCES, s.nr_res) ||
	    vme_nl_put_counters(skb, vme) ||
	    vme_nl_put_kmem(skb, vme) ||
	    vme_nl_put_knobs(skb, &s.knobs, s.mem_size))
		goto err_cancel;

	nest = nla_nest_start(skb, VFIO_MIG_EMU_A_PRECOPY);
	if (!nest)
		goto err_cancel;
	if (s.precopy &&
	    (nla_put_u64_64bit(skb, VFIO_MIG_EMU_PRECOPY_INITIAL_BYTES,
			       s.initial_bytes, VFIO_MIG_EMU_PRECOPY_PAD) ||
	     nla_put_u64_64bit(skb, VFIO_MIG_EMU_PRECOPY_DIRTY_BYTES,
			       s.dirty_bytes, VFIO_MIG_EMU_PRECOPY_PAD)))
		goto err_cancel;
	if (nla_put_u64_64bit(skb, VFIO_MIG_EMU_PRECOPY_STOP_COPY_BYTES,
			      s.stop_copy_bytes, VFIO_MIG_EMU_PRECOPY_PAD))
		goto err_cancel;
	nla_nest_end(skb, nest);
	genlmsg_end(skb, hdr);
	return 0;

err_cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

/*
 * Reply to @info in @msg (from genlmsg_new(), consumed) with a message built
 * by @fill.  A command that changes something allocates @msg before the
 * change: failing to allocate the reply must not leave a change made behind
 * an ENOMEM (found by the fault injection of scripts/guest-fault-inject).
 */
static int vme_nl_reply_msg(struct sk_buff *msg, struct genl_info *info,
			    u8 cmd, struct vme_device *vme,
			    int (*fill)(struct sk_buff *skb,
					struct vme_device *vme,
					const void *arg),
			    const void *arg)
{
	void *hdr;
	int ret;

	hdr = genlmsg_put_reply(msg, info, &vme_genl_family, 0, cmd);
	if (!hdr) {
		ret = -EMSGSIZE;
		goto err_free;
	}
	ret = -EMSGSIZE;
	if (vme && nla_put_string(msg, VFIO_MIG_EMU_A_UUID, vme->uuid))
		goto err_free;
	ret = fill(msg, vme, arg);
	if (ret)
		goto err_free;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_free:
	nlmsg_free(msg);
	return ret;
}

/* Reply to @info with a message built by @fill (a command that changes
 * nothing).
 */
static int vme_nl_reply(struct genl_info *info, u8 cmd, struct vme_device *vme,
			int (*fill)(struct sk_buff *skb, struct vme_device *vme,
				    const void *arg),
			const void *arg)
{
	struct sk_buff *msg;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	return vme_nl_reply_msg(msg, info, cmd, vme, fill, arg);
}

/* ---- DEV_GET, STATS_GET, COUNTERS_RESET ------------------------------- */

/*
 * DEV_GET's A_QUERY, or a negative errno.  Anyone may ask for the cheap
 * fields; the digest reads every page of the device (up to
 * VFIO_MIG_EMU_MAX_MEM_SIZE) under its dev_lock, so it needs the same
 * CAP_NET_ADMIN as the changing commands.
 */
static int vme_nl_dev_get_query(struct sk_buff *skb, struct nlattr **attrs,
				struct netlink_ext_ack *extack)
{
	struct nlattr *attr = attrs[VFIO_MIG_EMU_A_QUERY];
	u32 query = attr ? nla_get_u32(attr) : 0;

	if ((query & VFIO_MIG_EMU_QUERY_DIGEST) &&
	    !netlink_capable(skb, CAP_NET_ADMIN)) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "the digest (QUERY_DIGEST) needs CAP_NET_ADMIN");
		return -EPERM;
	}
	return query;
}

static int vme_nl_dev_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct vme_device *vme;
	struct sk_buff *msg;
	int query, ret;

	query = vme_nl_dev_get_query(skb, info->attrs, info->extack);
	if (query < 0)
		return query;
	vme = vme_nl_get_device(info);
	if (IS_ERR(vme))
		return PTR_ERR(vme);
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg) {
		ret = -ENOMEM;
		goto out_put;
	}
	ret = vme_nl_fill_device(msg, vme, info->snd_portid, info->snd_seq, 0,
				 query);
	if (ret) {
		nlmsg_free(msg);
		goto out_put;
	}
	ret = genlmsg_reply(msg, info);
out_put:
	vfio_put_device(&vme->vdev);
	return ret;
}

/*
 * The @idx-th device on vme_devices, referenced (vfio_put_device()), or
 * NULL past the end.  vme_devices_lock is held only for the walk: a dump
 * fills each device without it, so creating or removing an instance never
 * waits for a dump.  Devices added or removed meanwhile may be missed or
 * seen twice, as in any netlink dump.
 */
static struct vme_device *vme_nl_nth_device(long idx)
{
	struct vme_device *vme;

	mutex_lock(&vme_devices_lock);
	list_for_each_entry(vme, &vme_devices, node) {
		if (idx--)
			continue;
		get_device(&vme->vdev.device);
		mutex_unlock(&vme_devices_lock);
		return vme;
	}
	mutex_unlock(&vme_devices_lock);
	return NULL;
}

/* cb->args[0]: devices already dumped. */
static int vme_nl_dev_get_dumpit(struct sk_buff *skb,
				 struct netlink_callback *cb)
{
	struct genl_info dump_info;
	struct genl_info *info = vme_genl_info_dump(cb, &dump_info);
	struct vme_device *vme;
	int query, ret = 0;

	query = vme_nl_dev_get_query(cb->skb, info->attrs, info->extack);
	if (query < 0)
		return query;
	while ((vme = vme_nl_nth_device(cb->args[0]))) {
		ret = vme_nl_fill_device(skb, vme,
					 NETLINK_CB(cb->skb).portid,
					 cb->nlh->nlmsg_seq, NLM_F_MULTI, query);
		vfio_put_device(&vme->vdev);
		if (ret)
			break;
		cb->args[0]++;
		cond_resched();
	}
	if (ret && !skb->len)
		return ret;
	return skb->len;
}

static int vme_nl_fill_stats(struct sk_buff *msg, struct vme_device *vme,
			     const void *arg)
{
	struct nlattr *nest;

	nest = nla_nest_start(msg, VFIO_MIG_EMU_A_STATS);
	if (!nest ||
	    nla_put_u32(msg, VFIO_MIG_EMU_STAT_DEVICES,
			atomic_read(&vme_live_devices)) ||
	    nla_put_u32(msg, VFIO_MIG_EMU_STAT_FILES,
			atomic_read(&vme_live_files)) ||
	    nla_put_u32(msg, VFIO_MIG_EMU_STAT_BUFFERS,
			atomic_read(&vme_live_buffers)) ||
	    nla_put_u32(msg, VFIO_MIG_EMU_STAT_PAGES,
			atomic_read(&vme_live_pages)))
		return -EMSGSIZE;
	nla_nest_end(msg, nest);
	return 0;
}

static int vme_nl_stats_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	return vme_nl_reply(info, VFIO_MIG_EMU_CMD_STATS_GET, NULL,
			    vme_nl_fill_stats, NULL);
}

static int vme_nl_counters_reset_doit(struct sk_buff *skb,
				      struct genl_info *info)
{
	struct vme_device *vme;
	unsigned int i;

	vme = vme_nl_get_device(info);
	if (IS_ERR(vme))
		return PTR_ERR(vme);
	for (i = 0; i <= VFIO_MIG_EMU_CNT_MAX; i++)
		atomic64_set(&vme->counters[i], 0);
	vfio_put_device(&vme->vdev);
	return 0;
}

/* ---- KNOBS_SET -------------------------------------------------------- */

static bool vme_nl_state_ok(u32 state)
{
	return state == VFIO_MIG_EMU_ANY_STATE ||
	       (state > VFIO_DEVICE_STATE_ERROR && state < VME_NR_STATES);
}

/* Apply one KNOB_ARC_DELAY nest to @k (validated by vme_arc_policy). */
static int vme_nl_arc_delay(struct vme_knobs *k, struct nlattr *nest,
			    struct netlink_ext_ack *extack)
{
	struct nlattr *tb[VFIO_MIG_EMU_A_TO_STATE + 1];
	u32 from = VFIO_MIG_EMU_ANY_STATE, to = VFIO_MIG_EMU_ANY_STATE;
	u32 f, t, us;
	int ret;

	ret = nla_parse_nested(tb, VFIO_MIG_EMU_A_TO_STATE, nest,
			       vme_arc_policy, extack);
	if (ret)
		return ret;
	if (!tb[VFIO_MIG_EMU_KNOB_DELAY_US]) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "ARC_DELAY without KNOB_DELAY_US");
		return -EINVAL;
	}
	if (tb[VFIO_MIG_EMU_A_FROM_STATE])
		from = nla_get_u32(tb[VFIO_MIG_EMU_A_FROM_STATE]);
	if (tb[VFIO_MIG_EMU_A_TO_STATE])
		to = nla_get_u32(tb[VFIO_MIG_EMU_A_TO_STATE]);
	if (!vme_nl_state_ok(from)) {
		NL_SET_ERR_MSG_ATTR_FMT(extack, tb[VFIO_MIG_EMU_A_FROM_STATE],
					"ARC_DELAY from state %u: not 1..7 or ANY",
					from);
		return -EINVAL;
	}
	if (!vme_nl_state_ok(to)) {
		NL_SET_ERR_MSG_ATTR_FMT(extack, tb[VFIO_MIG_EMU_A_TO_STATE],
					"ARC_DELAY to state %u: not 1..7 or ANY",
					to);
		return -EINVAL;
	}
	us = nla_get_u32(tb[VFIO_MIG_EMU_KNOB_DELAY_US]);
	for (f = 1; f < VME_NR_STATES; f++)
		for (t = 1; t < VME_NR_STATES; t++)
			if ((from == VFIO_MIG_EMU_ANY_STATE || from == f) &&
			    (to == VFIO_MIG_EMU_ANY_STATE || to == t))
				k->arc_delay_us[f][t] = us;
	return 0;
}

static int vme_nl_fill_knobs(struct sk_buff *msg, struct vme_device *vme,
			     const void *arg)
{
	struct vme_knobs k;
	u64 mem_size;

	mutex_lock(&vme->dev_lock);
	k = vme->knobs;
	mem_size = vme->mem_size;
	mutex_unlock(&vme->dev_lock);
	return vme_nl_put_knobs(msg, &k, mem_size);
}

static int vme_nl_knobs_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *tb[VFIO_MIG_EMU_KNOB_MAX + 1];
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr *attr, *nest;
	struct sk_buff *msg = NULL;
	struct vme_device *vme;
	struct vme_knobs *k;
	u64 mem_size = 0;
	int rem, ret;

	if (VME_REQ_ATTR(info, VFIO_MIG_EMU_A_KNOBS))
		return -EINVAL;
	nest = info->attrs[VFIO_MIG_EMU_A_KNOBS];
	ret = nla_parse_nested(tb, VFIO_MIG_EMU_KNOB_MAX, nest,
			       vme_knob_policy, extack);
	if (ret)
		return ret;
	attr = tb[VFIO_MIG_EMU_KNOB_MEM_SIZE];
	if (attr) {
		mem_size = nla_get_u64(attr);
		if (mem_size % VFIO_MIG_EMU_PAGE_SIZE) {
			NL_SET_ERR_MSG_ATTR_FMT(extack, attr,
						"MEM_SIZE %llu is not a multiple of %u",
						mem_size,
						VFIO_MIG_EMU_PAGE_SIZE);
			return -EINVAL;
		}
	}

	vme = vme_nl_get_device(info);
	if (IS_ERR(vme))
		return PTR_ERR(vme);
	k = kmalloc(sizeof(*k), GFP_KERNEL);
	if (!k) {
		ret = -ENOMEM;
		goto out_put;
	}
	/* The reply first: once the knobs are committed, nothing may fail. */
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg) {
		ret = -ENOMEM;
		goto out_free;
	}

	/* Validate everything into a copy, then commit it as a whole. */
	ret = mutex_lock_killable(&vme->state_mutex);
	if (ret)
		goto out_free;
	*k = vme->knobs;
	nla_for_each_nested(attr, nest, rem) {
		if (nla_type(attr) != VFIO_MIG_EMU_KNOB_ARC_DELAY)
			continue;
		ret = vme_nl_arc_delay(k, attr, extack);
		if (ret)
			goto out_unlock;
	}
	if (tb[VFIO_MIG_EMU_KNOB_LOAD_NS_PER_KIB])
		k->load_ns_per_kib =
			nla_get_u32(tb[VFIO_MIG_EMU_KNOB_LOAD_NS_PER_KIB]);
	if (tb[VFIO_MIG_EMU_KNOB_LOAD_US_PER_RESOURCE])
		k->load_us_per_resource =
			nla_get_u32(tb[VFIO_MIG_EMU_KNOB_LOAD_US_PER_RESOURCE]);
	if (tb[VFIO_MIG_EMU_KNOB_RESOURCE_BYTES])
		k->resource_bytes =
			nla_get_u32(tb[VFIO_MIG_EMU_KNOB_RESOURCE_BYTES]);
	if (tb[VFIO_MIG_EMU_KNOB_DIRTY_RATE])
		k->dirty_rate = nla_get_u32(tb[VFIO_MIG_EMU_KNOB_DIRTY_RATE]);
	if (tb[VFIO_MIG_EMU_KNOB_REINIT_POLICY])
		k->reinit_policy =
			nla_get_u32(tb[VFIO_MIG_EMU_KNOB_REINIT_POLICY]);
	attr = tb[VFIO_MIG_EMU_KNOB_REFUSE_PRECOPY_V2];
	if (attr) {
		k->refuse_precopy_v2 = nla_get_u32(attr);
		if (k->refuse_precopy_v2 && VME_CORE_TAKES_PRECOPY_V2) {
			NL_SET_ERR_MSG_ATTR(extack, attr,
					    "the vfio core takes the PRECOPY_INFOv2 opt-in on this kernel");
			ret = -EOPNOTSUPP;
			goto out_unlock;
		}
	}

	attr = tb[VFIO_MIG_EMU_KNOB_MEM_SIZE];
	if (attr && mem_size != vme->mem_size) {
		if (vme->opened) {
			NL_SET_ERR_MSG_ATTR(extack, attr,
					    "MEM_SIZE can change only while the device is not open");
			ret = -EBUSY;
			goto out_unlock;
		}
		ret = vme_device_resize_locked(vme, mem_size);
		if (ret) {
			NL_SET_ERR_MSG_ATTR(extack, attr,
					    "no memory for the device's bitmaps");
			goto out_unlock;
		}
	}

	mutex_lock(&vme->dev_lock);
	vme->knobs = *k;
	mutex_unlock(&vme->dev_lock);
	vme_dirty_work_update_locked(vme);
out_unlock:
	vme_state_mutex_unlock(vme);
	if (!ret) {
		ret = vme_nl_reply_msg(msg, info, VFIO_MIG_EMU_CMD_KNOBS_SET,
				       vme, vme_nl_fill_knobs, NULL);
		msg = NULL;
	}
out_free:
	nlmsg_free(msg);
	kfree(k);
out_put:
	vfio_put_device(&vme->vdev);
	return ret;
}

/* ---- FAULT_ADD, FAULT_GET, FAULT_CLEAR -------------------------------- */

/* Effects each site can carry out. */
static const u32 vme_site_effects[] = {
	[VFIO_MIG_EMU_SITE_SET_STATE] = BIT(VFIO_MIG_EMU_EFFECT_FAIL) |
		BIT(VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR) |
		BIT(VFIO_MIG_EMU_EFFECT_DELAY),
	[VFIO_MIG_EMU_SITE_READ] = BIT(VFIO_MIG_EMU_EFFECT_FAIL) |
		BIT(VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR) |
		BIT(VFIO_MIG_EMU_EFFECT_DELAY) |
		BIT(VFIO_MIG_EMU_EFFECT_SHORT_IO) |
		BIT(VFIO_MIG_EMU_EFFECT_CORRUPT),
	[VFIO_MIG_EMU_SITE_WRITE] = BIT(VFIO_MIG_EMU_EFFECT_FAIL) |
		BIT(VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR) |
		BIT(VFIO_MIG_EMU_EFFECT_DELAY) |
		BIT(VFIO_MIG_EMU_EFFECT_SHORT_IO) |
		BIT(VFIO_MIG_EMU_EFFECT_CORRUPT),
	[VFIO_MIG_EMU_SITE_PRECOPY_INFO] = BIT(VFIO_MIG_EMU_EFFECT_FAIL) |
		BIT(VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR) |
		BIT(VFIO_MIG_EMU_EFFECT_DELAY) |
		BIT(VFIO_MIG_EMU_EFFECT_GARBAGE_SIZE),
	[VFIO_MIG_EMU_SITE_DATA_SIZE] = BIT(VFIO_MIG_EMU_EFFECT_FAIL) |
		BIT(VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR) |
		BIT(VFIO_MIG_EMU_EFFECT_DELAY) |
		BIT(VFIO_MIG_EMU_EFFECT_GARBAGE_SIZE),
	[VFIO_MIG_EMU_SITE_RESET] = BIT(VFIO_MIG_EMU_EFFECT_FAIL) |
		BIT(VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR) |
		BIT(VFIO_MIG_EMU_EFFECT_DELAY),
	[VFIO_MIG_EMU_SITE_OPEN] = BIT(VFIO_MIG_EMU_EFFECT_FAIL) |
		BIT(VFIO_MIG_EMU_EFFECT_DELAY),
};

static const char * const vme_site_names[] = {
	[VFIO_MIG_EMU_SITE_SET_STATE] = "SET_STATE",
	[VFIO_MIG_EMU_SITE_READ] = "READ",
	[VFIO_MIG_EMU_SITE_WRITE] = "WRITE",
	[VFIO_MIG_EMU_SITE_PRECOPY_INFO] = "PRECOPY_INFO",
	[VFIO_MIG_EMU_SITE_DATA_SIZE] = "DATA_SIZE",
	[VFIO_MIG_EMU_SITE_RESET] = "RESET",
	[VFIO_MIG_EMU_SITE_OPEN] = "OPEN",
};

static const char * const vme_effect_names[] = {
	[VFIO_MIG_EMU_EFFECT_FAIL] = "FAIL",
	[VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR] = "FAIL_TO_ERROR",
	[VFIO_MIG_EMU_EFFECT_DELAY] = "DELAY",
	[VFIO_MIG_EMU_EFFECT_SHORT_IO] = "SHORT_IO",
	[VFIO_MIG_EMU_EFFECT_CORRUPT] = "CORRUPT",
	[VFIO_MIG_EMU_EFFECT_GARBAGE_SIZE] = "GARBAGE_SIZE",
};

/* Reject attribute @type of the fault nest when present. */
static int vme_nl_fault_reject(struct nlattr **tb, unsigned int type,
			       const char *why, struct netlink_ext_ack *extack)
{
	if (!tb[type])
		return 0;
	NL_SET_ERR_MSG_ATTR_FMT(extack, tb[type], "%s", why);
	return -EINVAL;
}

/* Parse and validate an A_FAULT nest into @f. */
static int vme_nl_parse_fault(struct nlattr *nest, struct vme_fault *f,
			      struct netlink_ext_ack *extack)
{
	struct nlattr *tb[VFIO_MIG_EMU_FAULT_MAX + 1];
	bool fail;
	int ret;

	ret = nla_parse_nested(tb, VFIO_MIG_EMU_FAULT_MAX, nest,
			       vme_fault_policy, extack);
	if (ret)
		return ret;
	if (NL_REQ_ATTR_CHECK(extack, nest, tb, VFIO_MIG_EMU_FAULT_SITE) ||
	    NL_REQ_ATTR_CHECK(extack, nest, tb, VFIO_MIG_EMU_FAULT_EFFECT)) {
		NL_SET_ERR_MSG(extack, "a fault needs FAULT_SITE and FAULT_EFFECT");
		return -EINVAL;
	}
	f->site = nla_get_u32(tb[VFIO_MIG_EMU_FAULT_SITE]);
	f->effect = nla_get_u32(tb[VFIO_MIG_EMU_FAULT_EFFECT]);
	if (!(vme_site_effects[f->site] & BIT(f->effect))) {
		NL_SET_ERR_MSG_ATTR_FMT(extack, tb[VFIO_MIG_EMU_FAULT_EFFECT],
					"effect %s is not possible at site %s",
					vme_effect_names[f->effect],
					vme_site_names[f->site]);
		return -EINVAL;
	}

	/* Where: the arc filter belongs to SET_STATE only. */
	f->from = VFIO_MIG_EMU_ANY_STATE;
	f->to = VFIO_MIG_EMU_ANY_STATE;
	if (f->site == VFIO_MIG_EMU_SITE_SET_STATE) {
		if (tb[VFIO_MIG_EMU_FAULT_FROM_STATE])
			f->from = nla_get_u32(tb[VFIO_MIG_EMU_FAULT_FROM_STATE]);
		if (tb[VFIO_MIG_EMU_FAULT_TO_STATE])
			f->to = nla_get_u32(tb[VFIO_MIG_EMU_FAULT_TO_STATE]);
		if (!vme_nl_state_ok(f->from))
			return vme_nl_fault_reject(tb, VFIO_MIG_EMU_FAULT_FROM_STATE,
						   "FAULT_FROM_STATE: not 1..7 or ANY",
						   extack);
		if (!vme_nl_state_ok(f->to))
			return vme_nl_fault_reject(tb, VFIO_MIG_EMU_FAULT_TO_STATE,
						   "FAULT_TO_STATE: not 1..7 or ANY",
						   extack);
	} else {
		ret = vme_nl_fault_reject(tb, VFIO_MIG_EMU_FAULT_FROM_STATE,
					  "FAULT_FROM_STATE is for SITE_SET_STATE only",
					  extack) ?:
		      vme_nl_fault_reject(tb, VFIO_MIG_EMU_FAULT_TO_STATE,
					  "FAULT_TO_STATE is for SITE_SET_STATE only",
					  extack);
		if (ret)
			return ret;
	}

	/* When: without a trigger, every call (EVERY_NTH, N = 1). */
	f->trigger = VFIO_MIG_EMU_TRIGGER_EVERY_NTH;
	f->n = 1;
	if (tb[VFIO_MIG_EMU_FAULT_TRIGGER])
		f->trigger = nla_get_u32(tb[VFIO_MIG_EMU_FAULT_TRIGGER]);
	if (f->trigger == VFIO_MIG_EMU_TRIGGER_RANDOM) {
		if (!tb[VFIO_MIG_EMU_FAULT_PROBABILITY_PPM]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[VFIO_MIG_EMU_FAULT_TRIGGER],
					    "TRIGGER_RANDOM needs FAULT_PROBABILITY_PPM");
			return -EINVAL;
		}
		ret = vme_nl_fault_reject(tb, VFIO_MIG_EMU_FAULT_N,
					  "FAULT_N is not used by TRIGGER_RANDOM",
					  extack);
		if (ret)
			return ret;
		f->n = 0;
		f->ppm = nla_get_u32(tb[VFIO_MIG_EMU_FAULT_PROBABILITY_PPM]);
		if (tb[VFIO_MIG_EMU_FAULT_SEED])
			f->seed = nla_get_u64(tb[VFIO_MIG_EMU_FAULT_SEED]);
	} else {
		if (tb[VFIO_MIG_EMU_FAULT_TRIGGER] &&
		    !tb[VFIO_MIG_EMU_FAULT_N]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[VFIO_MIG_EMU_FAULT_TRIGGER],
					    "TRIGGER_NTH, EVERY_NTH and FIRST_N need FAULT_N");
			return -EINVAL;
		}
		ret = vme_nl_fault_reject(tb, VFIO_MIG_EMU_FAULT_PROBABILITY_PPM,
					  "FAULT_PROBABILITY_PPM is for TRIGGER_RANDOM only",
					  extack) ?:
		      vme_nl_fault_reject(tb, VFIO_MIG_EMU_FAULT_SEED,
					  "FAULT_SEED is for TRIGGER_RANDOM only",
					  extack);
		if (ret)
			return ret;
		if (tb[VFIO_MIG_EMU_FAULT_N])
			f->n = nla_get_u32(tb[VFIO_MIG_EMU_FAULT_N]);
	}

	/* What: errno for the FAIL effects (EIO by default), delay. */
	fail = f->effect == VFIO_MIG_EMU_EFFECT_FAIL ||
	       f->effect == VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR;
	if (fail) {
		f->err = EIO;
		if (tb[VFIO_MIG_EMU_FAULT_ERRNO])
			f->err = nla_get_u32(tb[VFIO_MIG_EMU_FAULT_ERRNO]);
		/*
		 * Only errnos userspace can see: 512 and up are the kernel's
		 * own (-ERESTARTSYS would reach the caller as 512,
		 * -ERESTARTNOINTR restarts the syscall into the same fault).
		 */
		if (f->err > VFIO_MIG_EMU_MAX_FAULT_ERRNO) {
			NL_SET_ERR_MSG_ATTR_FMT(extack,
						tb[VFIO_MIG_EMU_FAULT_ERRNO],
						"FAULT_ERRNO %u is kernel-internal or no errno: userspace can see 1..%u",
						f->err,
						VFIO_MIG_EMU_MAX_FAULT_ERRNO);
			return -EINVAL;
		}
	} else {
		ret = vme_nl_fault_reject(tb, VFIO_MIG_EMU_FAULT_ERRNO,
					  "FAULT_ERRNO is for EFFECT_FAIL and EFFECT_FAIL_TO_ERROR only",
					  extack);
		if (ret)
			return ret;
	}
	if (f->effect == VFIO_MIG_EMU_EFFECT_DELAY) {
		if (!tb[VFIO_MIG_EMU_FAULT_DELAY_US]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[VFIO_MIG_EMU_FAULT_EFFECT],
					    "EFFECT_DELAY needs FAULT_DELAY_US");
			return -EINVAL;
		}
		f->delay_us = nla_get_u32(tb[VFIO_MIG_EMU_FAULT_DELAY_US]);
	} else {
		ret = vme_nl_fault_reject(tb, VFIO_MIG_EMU_FAULT_DELAY_US,
					  "FAULT_DELAY_US is for EFFECT_DELAY only",
					  extack);
		if (ret)
			return ret;
	}
	return 0;
}

static int vme_nl_fill_fault_id(struct sk_buff *msg, struct vme_device *vme,
				const void *arg)
{
	const struct vme_fault *f = arg;

	return nla_put_u32(msg, VFIO_MIG_EMU_A_FAULT_ID, f->id) ?:
	       vme_nl_put_fault(msg, f);
}

static int vme_nl_fault_add_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct vme_device *vme;
	struct vme_fault *f, copy;
	struct sk_buff *msg;
	int ret;

	if (VME_REQ_ATTR(info, VFIO_MIG_EMU_A_FAULT))
		return -EINVAL;
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	/* The reply first: once the fault is armed, nothing may fail. */
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = vme_nl_parse_fault(info->attrs[VFIO_MIG_EMU_A_FAULT], f,
				 info->extack);
	if (ret)
		goto err_free;
	vme = vme_nl_get_device(info);
	if (IS_ERR(vme)) {
		ret = PTR_ERR(vme);
		goto err_free;
	}
	ret = vme_fault_add(vme, f, &copy);
	if (ret) {
		NL_SET_ERR_MSG_ATTR_FMT(info->extack,
					info->attrs[VFIO_MIG_EMU_A_FAULT],
					"device already has %u faults",
					VFIO_MIG_EMU_MAX_FAULTS);
		vfio_put_device(&vme->vdev);
		goto err_free;
	}
	/* The list owns f now (FAULT_CLEAR may free it): reply from the copy. */
	ret = vme_nl_reply_msg(msg, info, VFIO_MIG_EMU_CMD_FAULT_ADD, vme,
			       vme_nl_fill_fault_id, &copy);
	vfio_put_device(&vme->vdev);
	return ret;

err_free:
	nlmsg_free(msg);
	kfree(f);
	return ret;
}

/* FAULT_GET doit: one message, an A_FAULT nest per fault (or just @id). */
static int vme_nl_fill_faults(struct sk_buff *msg, struct vme_device *vme,
			      const void *arg)
{
	u32 id = *(const u32 *)arg;
	struct vme_fault *f;
	int ret = id ? -ENOENT : 0;

	mutex_lock(&vme->fault_lock);
	list_for_each_entry(f, &vme->faults, node) {
		if (id && f->id != id)
			continue;
		ret = vme_nl_put_fault(msg, f);
		if (ret)
			break;
	}
	mutex_unlock(&vme->fault_lock);
	return ret;
}

static int vme_nl_fault_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *attr = info->attrs[VFIO_MIG_EMU_A_FAULT_ID];
	struct vme_device *vme;
	u32 id = attr ? nla_get_u32(attr) : 0;
	int ret;

	vme = vme_nl_get_device(info);
	if (IS_ERR(vme))
		return PTR_ERR(vme);
	ret = vme_nl_reply(info, VFIO_MIG_EMU_CMD_FAULT_GET, vme,
			   vme_nl_fill_faults, &id);
	if (ret == -ENOENT)
		NL_SET_ERR_MSG_ATTR_FMT(info->extack, attr, "no fault %u", id);
	vfio_put_device(&vme->vdev);
	return ret;
}

/* FAULT_GET dumpit: a message per fault; cb->args[0]: last id sent. */
static int vme_nl_fault_get_dumpit(struct sk_buff *skb,
				   struct netlink_callback *cb)
{
	struct genl_info dump_info;
	struct genl_info *info = vme_genl_info_dump(cb, &dump_info);
	struct vme_device *vme;
	struct vme_fault *f;
	void *hdr;
	int ret = 0;

	vme = vme_nl_get_device(info);
	if (IS_ERR(vme))
		return PTR_ERR(vme);
	mutex_lock(&vme->fault_lock);
	list_for_each_entry(f, &vme->faults, node) {
		if (f->id <= cb->args[0])
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &vme_genl_family,
				  NLM_F_MULTI, VFIO_MIG_EMU_CMD_FAULT_GET);
		if (!hdr) {
			ret = -EMSGSIZE;
			break;
		}
		if (nla_put_string(skb, VFIO_MIG_EMU_A_UUID, vme->uuid) ||
		    nla_put_u32(skb, VFIO_MIG_EMU_A_FAULT_ID, f->id) ||
		    vme_nl_put_fault(skb, f)) {
			genlmsg_cancel(skb, hdr);
			ret = -EMSGSIZE;
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[0] = f->id;
	}
	mutex_unlock(&vme->fault_lock);
	vfio_put_device(&vme->vdev);
	if (ret && !skb->len)
		return ret;
	return skb->len;
}

static int vme_nl_fault_clear_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *attr = info->attrs[VFIO_MIG_EMU_A_FAULT_ID];
	struct vme_device *vme;
	u32 id = attr ? nla_get_u32(attr) : 0;
	int ret;

	vme = vme_nl_get_device(info);
	if (IS_ERR(vme))
		return PTR_ERR(vme);
	ret = vme_fault_clear(vme, id, !attr);
	if (ret)
		NL_SET_ERR_MSG_ATTR_FMT(info->extack, attr, "no fault %u", id);
	vfio_put_device(&vme->vdev);
	return ret;
}

/* ---- WORKLOAD --------------------------------------------------------- */

static int vme_nl_workload_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	struct vme_device *vme;
	u32 action, count;
	int ret;

	if (VME_REQ_ATTR(info, VFIO_MIG_EMU_A_WORKLOAD_ACTION) ||
	    VME_REQ_ATTR(info, VFIO_MIG_EMU_A_WORKLOAD_COUNT))
		return -EINVAL;
	action = nla_get_u32(info->attrs[VFIO_MIG_EMU_A_WORKLOAD_ACTION]);
	count = nla_get_u32(info->attrs[VFIO_MIG_EMU_A_WORKLOAD_COUNT]);

	vme = vme_nl_get_device(info);
	if (IS_ERR(vme))
		return PTR_ERR(vme);
	mutex_lock(&vme->dev_lock);
	ret = vme_workload_locked(vme, action, count);
	mutex_unlock(&vme->dev_lock);
	if (ret == -EBUSY)
		NL_SET_ERR_MSG_MOD(extack,
				   "the device changes only in RUNNING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P");
	else if (ret == -ENOSPC)
		NL_SET_ERR_MSG_ATTR_FMT(extack,
					info->attrs[VFIO_MIG_EMU_A_WORKLOAD_COUNT],
					"more than %u resources",
					VFIO_MIG_EMU_MAX_RESOURCES);
	vfio_put_device(&vme->vdev);
	return ret;
}

/* ---- QUIRKS_SET, QUIRKS_GET ------------------------------------------ */

static int vme_nl_fill_quirks(struct sk_buff *msg, struct vme_device *vme,
			      const void *arg)
{
	return nla_put_u64_64bit(msg, VFIO_MIG_EMU_A_QUIRKS,
				 vme_quirks_get(vme), VFIO_MIG_EMU_A_PAD);
}

/* With A_UUID the device named, without it the module-global mask. */
static int vme_nl_quirks_doit(struct genl_info *info, u8 cmd, bool set)
{
	struct vme_device *vme = NULL;
	struct sk_buff *msg;
	int ret;

	if (set && VME_REQ_ATTR(info, VFIO_MIG_EMU_A_QUIRKS))
		return -EINVAL;
	if (info->attrs[VFIO_MIG_EMU_A_UUID]) {
		vme = vme_nl_get_device(info);
		if (IS_ERR(vme))
			return PTR_ERR(vme);
	}
	/* The reply first: once the quirks are set, nothing may fail. */
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg) {
		ret = -ENOMEM;
		goto out_put;
	}
	if (set)
		vme_quirks_set(vme,
			       nla_get_u64(info->attrs[VFIO_MIG_EMU_A_QUIRKS]));
	ret = vme_nl_reply_msg(msg, info, cmd, vme, vme_nl_fill_quirks, NULL);
out_put:
	if (vme)
		vfio_put_device(&vme->vdev);
	return ret;
}

static int vme_nl_quirks_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	return vme_nl_quirks_doit(info, VFIO_MIG_EMU_CMD_QUIRKS_SET, true);
}

static int vme_nl_quirks_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	return vme_nl_quirks_doit(info, VFIO_MIG_EMU_CMD_QUIRKS_GET, false);
}

/* ---- events ----------------------------------------------------------- */

struct vme_event {
	u8 cmd;
	u32 from, to, after;
	int err;
	u32 kind;
	bool open;
	u32 nr_res;
	u64 bytes;
	const struct vme_fault *fault;
};

static int vme_event_put(struct sk_buff *skb, const struct vme_event *ev)
{
	switch (ev->cmd) {
	case VFIO_MIG_EMU_CMD_EVENT_STATE:
		return nla_put_u32(skb, VFIO_MIG_EMU_A_FROM_STATE, ev->from) ?:
		       nla_put_u32(skb, VFIO_MIG_EMU_A_TO_STATE, ev->to) ?:
		       nla_put_u32(skb, VFIO_MIG_EMU_A_ERRNO, -ev->err) ?:
		       nla_put_u32(skb, VFIO_MIG_EMU_A_STATE, ev->after);
	case VFIO_MIG_EMU_CMD_EVENT_SESSION:
		return nla_put_u32(skb, VFIO_MIG_EMU_A_SESSION_KIND, ev->kind) ?:
		       nla_put_u8(skb, VFIO_MIG_EMU_A_SESSION_OPEN, ev->open);
	case VFIO_MIG_EMU_CMD_EVENT_FAULT:
		if (ev->fault->site == VFIO_MIG_EMU_SITE_SET_STATE &&
		    (nla_put_u32(skb, VFIO_MIG_EMU_A_FROM_STATE, ev->from) ||
		     nla_put_u32(skb, VFIO_MIG_EMU_A_TO_STATE, ev->to)))
			return -EMSGSIZE;
		return nla_put_u32(skb, VFIO_MIG_EMU_A_FAULT_ID,
				   ev->fault->id) ?:
		       vme_nl_put_fault(skb, ev->fault);
	case VFIO_MIG_EMU_CMD_EVENT_CRITICAL:
		return nla_put_u32(skb, VFIO_MIG_EMU_A_NR_RESOURCES,
				   ev->nr_res) ?:
		       nla_put_u64_64bit(skb, VFIO_MIG_EMU_A_BYTES, ev->bytes,
					 VFIO_MIG_EMU_A_PAD);
	case VFIO_MIG_EMU_CMD_EVENT_RESET:
		return nla_put_u32(skb, VFIO_MIG_EMU_A_FROM_STATE, ev->from);
	}
	return -EINVAL;
}

/*
 * Number the event and multicast it, both under event_lock so that a
 * device's events leave in sequence order.  Every caller may sleep.  A
 * sequence number is used even when nobody listens or the message cannot
 * be allocated: a listener sees such a loss as a gap.
 */
static void vme_event_emit(struct vme_device *vme, const struct vme_event *ev)
{
	struct sk_buff *skb;
	u64 seq;
	void *hdr;

	might_sleep();
	mutex_lock(&vme->event_lock);
	seq = ++vme->event_seq;
	down_read(&vme_events_rwsem);
	if (!vme_events_on ||
	    !genl_has_listeners(&vme_genl_family, &init_net, VME_MCGRP_EVENTS))
		goto out_unlock;
	skb = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!skb)
		goto out_unlock;
	hdr = genlmsg_put(skb, 0, 0, &vme_genl_family, 0, ev->cmd);
	if (!hdr)
		goto err_free;
	if (nla_put_string(skb, VFIO_MIG_EMU_A_UUID, vme->uuid) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_EMU_A_EVENT_SEQ, seq,
			      VFIO_MIG_EMU_A_PAD) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_EMU_A_TIMESTAMP_NS, ktime_get_ns(),
			      VFIO_MIG_EMU_A_PAD) ||
	    vme_event_put(skb, ev))
		goto err_free;
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&vme_genl_family, skb, 0, VME_MCGRP_EVENTS,
			  GFP_KERNEL);
	goto out_unlock;

err_free:
	nlmsg_free(skb);
out_unlock:
	up_read(&vme_events_rwsem);
	mutex_unlock(&vme->event_lock);
}

void vme_event_state(struct vme_device *vme, u32 from, u32 to, int err,
		     u32 after)
{
	struct vme_event ev = {
		.cmd = VFIO_MIG_EMU_CMD_EVENT_STATE,
		.from = from, .to = to, .err = err, .after = after,
	};

	trace_vme_state_change(vme->uuid, from, to, err, after);
	vme_event_emit(vme, &ev);
}

void vme_event_session(struct vme_device *vme, u32 kind, bool open)
{
	struct vme_event ev = {
		.cmd = VFIO_MIG_EMU_CMD_EVENT_SESSION,
		.kind = kind, .open = open,
	};

	vme_event_emit(vme, &ev);
}

/* Called with fault_lock held: @f is stable. */
void vme_event_fault(struct vme_device *vme, const struct vme_fault *f,
		     u32 from, u32 to)
{
	struct vme_event ev = {
		.cmd = VFIO_MIG_EMU_CMD_EVENT_FAULT,
		.from = from, .to = to, .fault = f,
	};

	lockdep_assert_held(&vme->fault_lock);
	vme_event_emit(vme, &ev);
}

void vme_event_critical(struct vme_device *vme, u32 nr_res, u64 bytes)
{
	struct vme_event ev = {
		.cmd = VFIO_MIG_EMU_CMD_EVENT_CRITICAL,
		.nr_res = nr_res, .bytes = bytes,
	};

	trace_vme_critical(vme->uuid, nr_res, bytes);
	vme_event_emit(vme, &ev);
}

void vme_event_reset(struct vme_device *vme, u32 from)
{
	struct vme_event ev = {
		.cmd = VFIO_MIG_EMU_CMD_EVENT_RESET,
		.from = from,
	};

	vme_event_emit(vme, &ev);
}

/* ---- family ----------------------------------------------------------- */

static const struct genl_ops vme_genl_ops[] = {
	{
		.cmd = VFIO_MIG_EMU_CMD_DEV_GET,
		.doit = vme_nl_dev_get_doit,
		.dumpit = vme_nl_dev_get_dumpit,
		.policy = vme_dev_get_policy,
		.maxattr = ARRAY_SIZE(vme_dev_get_policy) - 1,
	},
	{
		.cmd = VFIO_MIG_EMU_CMD_KNOBS_SET,
		.doit = vme_nl_knobs_set_doit,
		.policy = vme_knobs_set_policy,
		.maxattr = ARRAY_SIZE(vme_knobs_set_policy) - 1,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = VFIO_MIG_EMU_CMD_FAULT_ADD,
		.doit = vme_nl_fault_add_doit,
		.policy = vme_fault_add_policy,
		.maxattr = ARRAY_SIZE(vme_fault_add_policy) - 1,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = VFIO_MIG_EMU_CMD_FAULT_GET,
		.doit = vme_nl_fault_get_doit,
		.dumpit = vme_nl_fault_get_dumpit,
		.policy = vme_fault_id_policy,
		.maxattr = ARRAY_SIZE(vme_fault_id_policy) - 1,
	},
	{
		.cmd = VFIO_MIG_EMU_CMD_FAULT_CLEAR,
		.doit = vme_nl_fault_clear_doit,
		.policy = vme_fault_id_policy,
		.maxattr = ARRAY_SIZE(vme_fault_id_policy) - 1,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = VFIO_MIG_EMU_CMD_WORKLOAD,
		.doit = vme_nl_workload_doit,
		.policy = vme_workload_policy,
		.maxattr = ARRAY_SIZE(vme_workload_policy) - 1,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = VFIO_MIG_EMU_CMD_COUNTERS_RESET,
		.doit = vme_nl_counters_reset_doit,
		.policy = vme_uuid_only_policy,
		.maxattr = ARRAY_SIZE(vme_uuid_only_policy) - 1,
		.flags = GENL_ADMIN_PERM,
	},
	{
		/* No attributes: the core rejects any. */
		.cmd = VFIO_MIG_EMU_CMD_STATS_GET,
		.doit = vme_nl_stats_get_doit,
	},
	{
		.cmd = VFIO_MIG_EMU_CMD_QUIRKS_SET,
		.doit = vme_nl_quirks_set_doit,
		.policy = vme_quirks_set_policy,
		.maxattr = ARRAY_SIZE(vme_quirks_set_policy) - 1,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = VFIO_MIG_EMU_CMD_QUIRKS_GET,
		.doit = vme_nl_quirks_get_doit,
		.policy = vme_quirks_get_policy,
		.maxattr = ARRAY_SIZE(vme_quirks_get_policy) - 1,
	},
};

static struct genl_family vme_genl_family = {
	.name = VFIO_MIG_EMU_NAME,
	.version = VFIO_MIG_EMU_GENL_VERSION,
	.module = THIS_MODULE,
	.ops = vme_genl_ops,
	.n_ops = ARRAY_SIZE(vme_genl_ops),
	/* Strict validation (header, flags, attributes) for every command. */
	.resv_start_op = VFIO_MIG_EMU_CMD_UNSPEC + 1,
	/*
	 * No genl_mutex around the handlers: a command that waits for a busy
	 * device (KNOBS_SET behind an arc delay, DEV_GET behind a read's
	 * DELAY) must not hold up generic netlink for everyone.  Each handler
	 * takes the device's own locks and holds a reference on the device
	 * (vme_nl_get_device(), vme_nl_nth_device()) for as long as it runs;
	 * the module-wide state they touch is atomic (counters, quirk masks)
	 * or under vme_devices_lock.  genl_unregister_family() still waits
	 * for running doits (cb_lock), and a dump holds a module reference.
	 */
	.parallel_ops = true,
	.mcgrps = vme_mcgrps,
	.n_mcgrps = ARRAY_SIZE(vme_mcgrps),
#ifndef HAVE_GENL_MCAST_CAP
	.mcast_bind = vme_genl_mcast_bind,
#endif
};

int vme_netlink_init(void)
{
	int ret;

	ret = genl_register_family(&vme_genl_family);
	if (ret)
		return ret;
	down_write(&vme_events_rwsem);
	vme_events_on = true;
	up_write(&vme_events_rwsem);
	return 0;
}

/* First thing on module exit: no command runs and no event goes after. */
void vme_netlink_exit(void)
{
	down_write(&vme_events_rwsem);
	vme_events_on = false;
	up_write(&vme_events_rwsem);
	genl_unregister_family(&vme_genl_family);
}
