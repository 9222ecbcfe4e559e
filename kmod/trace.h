/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio_mig_emu tracepoints: state changes, precopy queries, faults fired
 * and new critical data.  `trace-cmd record -e vfio_mig_emu` or
 * `perf record -e 'vfio_mig_emu:*'`.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vfio_mig_emu

#if !defined(VME_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define VME_TRACE_H

#include <linux/tracepoint.h>
#include <linux/uuid.h>

TRACE_EVENT(vme_state_change,
	TP_PROTO(const char *uuid, u32 from, u32 to, int err, u32 after),
	TP_ARGS(uuid, from, to, err, after),
	TP_STRUCT__entry(
		__array(char, uuid, UUID_STRING_LEN + 1)
		__field(u32, from)
		__field(u32, to)
		__field(int, err)
		__field(u32, after)
	),
	TP_fast_assign(
		strscpy(__entry->uuid, uuid, sizeof(__entry->uuid));
		__entry->from = from;
		__entry->to = to;
		__entry->err = err;
		__entry->after = after;
	),
	TP_printk("%s %u -> %u errno %d now %u", __entry->uuid, __entry->from,
		  __entry->to, __entry->err, __entry->after)
);

TRACE_EVENT(vme_precopy_query,
	TP_PROTO(const char *uuid, u64 initial, u64 dirty, u32 flags),
	TP_ARGS(uuid, initial, dirty, flags),
	TP_STRUCT__entry(
		__array(char, uuid, UUID_STRING_LEN + 1)
		__field(u64, initial)
		__field(u64, dirty)
		__field(u32, flags)
	),
	TP_fast_assign(
		strscpy(__entry->uuid, uuid, sizeof(__entry->uuid));
		__entry->initial = initial;
		__entry->dirty = dirty;
		__entry->flags = flags;
	),
	TP_printk("%s initial %llu dirty %llu flags %#x", __entry->uuid,
		  __entry->initial, __entry->dirty, __entry->flags)
);

TRACE_EVENT(vme_fault_fired,
	TP_PROTO(const char *uuid, u32 id, u32 site, u32 effect, u32 err),
	TP_ARGS(uuid, id, site, effect, err),
	TP_STRUCT__entry(
		__array(char, uuid, UUID_STRING_LEN + 1)
		__field(u32, id)
		__field(u32, site)
		__field(u32, effect)
		__field(u32, err)
	),
	TP_fast_assign(
		strscpy(__entry->uuid, uuid, sizeof(__entry->uuid));
		__entry->id = id;
		__entry->site = site;
		__entry->effect = effect;
		__entry->err = err;
	),
	TP_printk("%s fault %u site %u effect %u errno %u", __entry->uuid,
		  __entry->id, __entry->site, __entry->effect, __entry->err)
);

TRACE_EVENT(vme_critical,
	TP_PROTO(const char *uuid, u32 nr_res, u64 bytes),
	TP_ARGS(uuid, nr_res, bytes),
	TP_STRUCT__entry(
		__array(char, uuid, UUID_STRING_LEN + 1)
		__field(u32, nr_res)
		__field(u64, bytes)
	),
	TP_fast_assign(
		strscpy(__entry->uuid, uuid, sizeof(__entry->uuid));
		__entry->nr_res = nr_res;
		__entry->bytes = bytes;
	),
	TP_printk("%s resources %u critical bytes added %llu", __entry->uuid,
		  __entry->nr_res, __entry->bytes)
);

#endif /* VME_TRACE_H */

/* Out of tree: define_trace.h finds this file through -I$(src). */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
