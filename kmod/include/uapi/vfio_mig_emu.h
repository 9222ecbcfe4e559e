/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vfio_mig_emu: the contract between the emulated migratable vfio device
 * (kmod/) and its userspace (libvfiomig, vfio-migtest, vfio-migctl).
 *
 * Everything here is little-endian on the wire and in BAR0.  Userspace may
 * include this header from C++; it only needs <linux/types.h>.
 */
#ifndef _UAPI_VFIO_MIG_EMU_H
#define _UAPI_VFIO_MIG_EMU_H

#include <linux/types.h>

/* Module name, mdev parent name, generic netlink family name. */
#define VFIO_MIG_EMU_NAME		"vfio_mig_emu"

/*
 * PCI identity of every instance.  These IDs are NOT allocated by the PCI-SIG
 * to this project: they exist only inside this emulation and must never be
 * matched by a driver for real hardware.
 */
#define VFIO_MIG_EMU_PCI_VENDOR_ID	0xfffe
#define VFIO_MIG_EMU_PCI_DEVICE_ID	0x6d65
#define VFIO_MIG_EMU_PCI_CLASS		0xff0000	/* unassigned class */

/*
 * Device profiles, one mdev type each.  The sysfs type directory is
 * "vfio_mig_emu-<name>" under
 * /sys/devices/virtual/vfio_mig_emu/vfio_mig_emu/mdev_supported_types/.
 *
 *   name       migration flags
 *   full       STOP_COPY | P2P | PRE_COPY
 *   stopcopy   STOP_COPY
 *   p2p        STOP_COPY | P2P
 *   precopy    STOP_COPY | PRE_COPY
 */
enum vfio_mig_emu_profile {
	VFIO_MIG_EMU_PROFILE_FULL = 0,
	VFIO_MIG_EMU_PROFILE_STOPCOPY = 1,
	VFIO_MIG_EMU_PROFILE_P2P = 2,
	VFIO_MIG_EMU_PROFILE_PRECOPY = 3,
	VFIO_MIG_EMU_PROFILE_COUNT,
};

#define VFIO_MIG_EMU_PROFILE_NAMES	{ "full", "stopcopy", "p2p", "precopy" }

/*
 * Default device memory size of a new instance.  The memory fills the
 * start of BAR2; BAR2 is the memory size rounded up to a power of two
 * (REGION_INFO and config-space BAR sizing agree), the tail reads zero.
 */
#define VFIO_MIG_EMU_DEFAULT_MEM_SIZE	(1024 * 1024)

/* Dirty tracking and stream granularity; independent of the host PAGE_SIZE. */
#define VFIO_MIG_EMU_PAGE_SIZE		4096

/*
 * Regions, at the usual vfio-pci offsets (region index << 40):
 *   VFIO_PCI_CONFIG_REGION_INDEX  256 bytes of PCI config space.
 *                                 0x40..0xff is a vendor-specific scratch
 *                                 area, read/write and migrated.
 *   VFIO_PCI_BAR0_REGION_INDEX    the register file below (4 KiB).
 *   VFIO_PCI_BAR2_REGION_INDEX    device memory, the bulk of the state;
 *                                 the region is the memory size rounded
 *                                 up to a power of two, the tail past
 *                                 the memory reads zero, drops writes.
 * All other BARs, ROM and VGA have size 0.
 */
#define VFIO_MIG_EMU_CONFIG_SIZE	256
#define VFIO_MIG_EMU_CONFIG_SCRATCH	0x40
#define VFIO_MIG_EMU_BAR0_SIZE		4096

/*
 * BAR0 register file: 32-bit registers, 4-byte aligned accesses.
 * Region writes that change device state (BAR0 writable registers, BAR2)
 * are accepted in RUNNING, RUNNING_P2P, PRE_COPY and PRE_COPY_P2P and
 * fail with EBUSY in every other state, where the uAPI forbids the device
 * from changing its internal state.  Reads are accepted in every state.
 */
#define VFIO_MIG_EMU_REG_MAGIC		0x000	/* RO: VFIO_MIG_EMU_MAGIC */
#define VFIO_MIG_EMU_REG_VERSION	0x004	/* RO: register layout version */
#define VFIO_MIG_EMU_REG_PROFILE	0x008	/* RO: enum vfio_mig_emu_profile */
#define VFIO_MIG_EMU_REG_STATE		0x00c	/* RO: enum vfio_device_mig_state */
#define VFIO_MIG_EMU_REG_MEM_SIZE_LO	0x010	/* RO: memory size, low 32 bits */
#define VFIO_MIG_EMU_REG_MEM_SIZE_HI	0x014	/* RO: memory size, high 32 bits */
#define VFIO_MIG_EMU_REG_DIGEST		0x018	/* RO: state digest, see below */
#define VFIO_MIG_EMU_REG_DIRTY_DOORBELL	0x020	/* WO: workload dirties N pages */
#define VFIO_MIG_EMU_REG_RECONFIG_DOORBELL 0x024 /* WO: add N resources */
#define VFIO_MIG_EMU_REG_NR_RESOURCES	0x028	/* RO: resources configured */
#define VFIO_MIG_EMU_REG_SCRATCH	0x100	/* RW: scratch registers */
#define VFIO_MIG_EMU_NR_SCRATCH		64

#define VFIO_MIG_EMU_MAGIC		0x55454d56	/* "VMEU" */
#define VFIO_MIG_EMU_REG_LAYOUT_VERSION	1

/*
 * The state digest is crc32c (seed ~0, no final inversion) over, in order:
 * the 256 bytes of config space, the scratch registers (little-endian), the
 * workload PRNG state (__le64), the resource table (struct
 * vfio_mig_emu_resource each, in id order) and the whole device memory
 * (never-written pages read as zeros).  It excludes the migration state,
 * so a source at stop time and its destination after resume must agree.
 * The module keeps the memory part from cached CRCs of pages and of 16-page
 * chunks (crc32c is linear), refreshed where memory changed and taken from
 * the MEM records it saves and loads: a digest reads only the pages
 * written since the last one, not the whole memory.
 *
 * The dirty doorbell runs the emulated workload: for each of N steps a
 * page index and a fill pattern are drawn from the workload PRNG (part of
 * the migrated state) and that page is written, exactly as a guest write
 * to BAR2 would be.
 *
 * Precisely: the PRNG is splitmix64 (vfio_mig_emu_splitmix64() below),
 * state 0 after reset; a draw returns z.  A workload step draws z, writes page (z >> 32) % (mem_size / 4096)
 * with the 32-bit pattern (u32)z repeated (little-endian).  The
 * reconfigure doorbell appends N resources, each from one draw: id = the
 * next id, kind = z >> 32, cookie = z.
 *
 * Errors of BAR0 accesses: not exactly 4 bytes or not 4-byte aligned,
 * writes to read-only or unimplemented offsets, and a dirty doorbell above
 * VFIO_MIG_EMU_MAX_DIRTY_STEPS: EINVAL.  A reconfigure doorbell that would
 * exceed VFIO_MIG_EMU_MAX_RESOURCES: ENOSPC (nothing added).  Writable
 * registers and BAR2 outside RUNNING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P:
 * EBUSY.  Reads of write-only and unimplemented offsets return 0.  Config
 * space and BAR2 take any size and alignment inside the region; an access
 * that does not fit in the region fails with EINVAL.
 */

/*
 * splitmix64, the one PRNG of the contract: the workload, the resource
 * contexts and random fault triggers.  A draw adds 0x9e3779b97f4a7c15 to
 * *state and returns the mixed value.
 */
static inline __u64 vfio_mig_emu_splitmix64(__u64 *state)
{
	__u64 z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
#define VFIO_MIG_EMU_MAX_DIRTY_STEPS	65536
#define VFIO_MIG_EMU_MAX_RESOURCES	4096

/*
 * Migration stream, version 1.0.
 *
 * A stream is one struct vfio_mig_emu_stream_header followed by records.
 * Each record is a struct vfio_mig_emu_record followed by `length` payload
 * bytes.  Records are numbered from 0 in `seq` with no gaps; the last one is
 * an END record.  The resuming side rejects, and RESUMING -> STOP fails
 * for, a stream that is truncated (no END), corrupted (crc mismatch),
 * reordered or with lost records (seq gap), for another profile or device
 * memory size, of another major version, with non-zero must-be-zero fields,
 * unknown record types, out-of-range lengths or offsets, data after END, or
 * whose loaded state does not match the END record's digest.
 *
 * A saving session emits, in order: the header; the initial data (CONFIG,
 * one RESOURCE per resource, and MEM records for every page written since
 * the device was reset, as the session starts: dirty_bytes starts at
 * zero); then dirty data (pages written again during PRE_COPY are sent
 * again); and, in STOP_COPY only, the final CONFIG, REGS and END.  A resuming device starts from all-zero memory, so pages never
 * sent load as zeros.  Later records override earlier ones.
 *
 * Resources added during a saving session are new critical data.  Without
 * the VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 opt-in (protocol v1) they are
 * dirty data: sent once the initial pages are out, ahead of further memory
 * (in PRE_COPY as soon as the reader gets there, else in STOP_COPY) and
 * counted in dirty_bytes;
 * initial_bytes never grows, so a v1 user cannot tell them from memory.
 * If userspace opted in before the session started, they are new initial
 * data, sent in PRE_COPY ahead of further memory, together with every page
 * dirty at that moment (REINIT_POLICY), and the next
 * VFIO_MIG_GET_PRECOPY_INFO reports VFIO_PRECOPY_INFO_REINIT (once) with
 * initial_bytes covering them and dirty_bytes restarting from zero.
 * RESOURCE ids on the resuming side must be at most the number loaded so
 * far (equal appends, smaller overrides); REGS.nr_resources must equal the
 * number loaded.  MEM records cover runs of consecutive pages, at most
 * VFIO_MIG_EMU_MAX_RECORD_PAYLOAD each.
 */
#define VFIO_MIG_EMU_STREAM_MAGIC	0x4d53454d	/* "MESM" */
#define VFIO_MIG_EMU_RECORD_MAGIC	0x4352454d	/* "MERC" */
/*
 * Minor 1: a RESOURCE record's payload is struct vfio_mig_emu_resource
 * followed by 0 .. VFIO_MIG_EMU_MAX_RESOURCE_BYTES context bytes (the
 * RESOURCE_BYTES knob of the source; 0 by default, which is minor 0's
 * layout): the splitmix64 sequence seeded with the resource's cookie
 * (state = cookie; per draw state += 0x9e3779b97f4a7c15, mixed as the
 * workload PRNG), 8 little-endian bytes per draw, truncated.  The
 * resuming side checks them ("RESOURCE context does not match its
 * cookie").  They are not part of the digest (the cookie is).
 */
#define VFIO_MIG_EMU_STREAM_VERSION_MAJOR 1
#define VFIO_MIG_EMU_STREAM_VERSION_MINOR 1

/* Largest payload of a single record; bounds buffering on both sides. */
#define VFIO_MIG_EMU_MAX_RECORD_PAYLOAD	(64 * 1024)

struct vfio_mig_emu_stream_header {
	__le32 magic;		/* VFIO_MIG_EMU_STREAM_MAGIC */
	__le16 version_major;
	__le16 version_minor;	/* newer minors are accepted */
	__le32 profile;		/* enum vfio_mig_emu_profile */
	__le32 flags;		/* must be zero */
	__le64 mem_size;	/* device memory (BAR2) size in bytes */
	__le32 config_size;	/* VFIO_MIG_EMU_CONFIG_SIZE */
	__le32 page_size;	/* VFIO_MIG_EMU_PAGE_SIZE */
	__le32 reserved;	/* must be zero */
	__le32 crc;		/* crc32c of this header with crc = 0 */
};

enum vfio_mig_emu_record_type {
	VFIO_MIG_EMU_REC_CONFIG = 1,	/* payload: config space */
	VFIO_MIG_EMU_REC_REGS = 2,	/* payload: struct vfio_mig_emu_regs */
	VFIO_MIG_EMU_REC_MEM = 3,	/* arg: byte offset; payload: pages */
	VFIO_MIG_EMU_REC_RESOURCE = 4,	/* payload: struct vfio_mig_emu_resource */
	VFIO_MIG_EMU_REC_END = 5,	/* arg: expected digest; no payload */
};

struct vfio_mig_emu_record {
	__le32 magic;		/* VFIO_MIG_EMU_RECORD_MAGIC */
	__le16 type;		/* enum vfio_mig_emu_record_type */
	__le16 flags;		/* must be zero */
	__le32 seq;		/* 0, 1, 2, ... within a stream */
	__le32 length;		/* payload bytes that follow */
	__le64 arg;		/* type-specific, zero where unused */
	__le32 reserved;	/* must be zero */
	__le32 crc;		/* crc32c of this header (crc = 0) + payload */
};

/*
 * REC_MEM: arg is page aligned, length a non-zero multiple of
 * VFIO_MIG_EMU_PAGE_SIZE, at most VFIO_MIG_EMU_MAX_RECORD_PAYLOAD, and
 * arg + length <= mem_size.
 */

/* REC_REGS payload: the register file state that is migrated. */
struct vfio_mig_emu_regs {
	__le32 scratch[VFIO_MIG_EMU_NR_SCRATCH];
	__le64 workload_prng;	/* state of the dirtying workload's PRNG */
	__le32 nr_resources;	/* must match the RESOURCE records loaded */
	__le32 reserved;	/* must be zero */
};

/*
 * A device "resource" (think: a queue or a context a real device must
 * create before it can run): critical data, expensive to load on the
 * destination.  Created by the reconfigure doorbell.
 */
struct vfio_mig_emu_resource {
	__le32 id;		/* 0, 1, 2, ... */
	__le32 kind;		/* opaque to the stream, part of the digest */
	__le64 cookie;		/* opaque to the stream, part of the digest */
};

/*
 * Generic netlink control plane: family VFIO_MIG_EMU_NAME, version
 * VFIO_MIG_EMU_GENL_VERSION, multicast group "events" (init_net only).
 * Every command answers a plain NLM_F_REQUEST | NLM_F_ACK request; DEV_GET
 * and FAULT_GET also dump (NLM_F_DUMP).  Validation is strict: nested
 * attributes must carry NLA_F_NESTED, genlmsghdr.reserved must be 0, an
 * attribute a command does not take is refused.  A_UUID is the
 * NUL-terminated 36-character uuid (EINVAL "not a uuid" otherwise); an
 * unknown one gets ENODEV.  A missing required attribute gets EINVAL, the
 * extack message "missing attribute <NAME>" and NLMSGERR_ATTR_MISS_TYPE.
 * DEV_GET replies: A_UUID, PROFILE, STATE, MEM_SIZE, DEVICE_OPEN,
 * SESSIONS, NR_RESOURCES, COUNTERS, KNOBS and PRECOPY (INITIAL and
 * DIRTY_BYTES only while a session is in PRE_COPY(_P2P); STOP_COPY_BYTES
 * always, as MIG_DATA_SIZE would report), and DIGEST only when the request
 * asks for it (A_QUERY with VFIO_MIG_EMU_QUERY_DIGEST).  DEV_GET is a
 * query: it never changes a device or a live session (its precopy figures
 * are the session's as the last read() or VFIO_MIG_GET_PRECOPY_INFO left
 * them).  Replies of the changing commands: KNOBS_SET: A_UUID + A_KNOBS;
 * FAULT_ADD: A_UUID, A_FAULT_ID, A_FAULT; the others an ack only.
 *
 * Every command that changes anything needs CAP_NET_ADMIN
 * (GENL_ADMIN_PERM), and so does the digest (it may read every page of
 * the device: EPERM with an extack otherwise) and joining the "events" group
 * (EPERM from the bind or NETLINK_ADD_MEMBERSHIP).  The other queries are
 * cheap and open to everyone.  Commands run in parallel (the family has
 * parallel_ops): a command that waits for one device (KNOBS_SET behind an
 * arc delay) holds up neither other devices nor the rest of generic
 * netlink.  Attributes are validated by a strict policy: an
 * unknown, oversized, ill-typed or out-of-range attribute fails the
 * request with an extack that points at it (NLMSGERR_ATTR_OFFS, plus
 * NLMSGERR_ATTR_POLICY with the valid range); the message text is the
 * kernel's generic one ("integer out of range") for policy failures and
 * names the attribute and value for the module's own checks.  A device is
 * named by VFIO_MIG_EMU_A_UUID.
 */
#define VFIO_MIG_EMU_GENL_VERSION	1
#define VFIO_MIG_EMU_MCGRP_EVENTS	"events"

enum vfio_mig_emu_cmd {
	VFIO_MIG_EMU_CMD_UNSPEC,
	/* doit: one device (A_UUID); dumpit: every device */
	VFIO_MIG_EMU_CMD_DEV_GET,
	/* admin: A_UUID + A_KNOBS; replies with the device's knobs */
	VFIO_MIG_EMU_CMD_KNOBS_SET,
	/* admin: A_UUID + A_FAULT; replies with A_FAULT_ID */
	VFIO_MIG_EMU_CMD_FAULT_ADD,
	/* dumpit: A_UUID's faults, each an A_FAULT nest with hit counts */
	VFIO_MIG_EMU_CMD_FAULT_GET,
	/* admin: A_UUID [+ A_FAULT_ID]; without an id clears them all */
	VFIO_MIG_EMU_CMD_FAULT_CLEAR,
	/* admin: A_UUID + A_WORKLOAD_ACTION + A_WORKLOAD_COUNT */
	VFIO_MIG_EMU_CMD_WORKLOAD,
	/* admin: A_UUID; zeroes the counters */
	VFIO_MIG_EMU_CMD_COUNTERS_RESET,
	/* doit: module-wide live object counts (A_STATS) */
	VFIO_MIG_EMU_CMD_STATS_GET,

	/* Events on the "events" group; each carries A_UUID, A_EVENT_SEQ
	 * (per device, from 1, no gaps) and A_TIMESTAMP_NS.
	 */
	/* One per arc of SET MIG_DEVICE_STATE actually attempted, in order:
	 * A_FROM_STATE, A_TO_STATE (the arc), A_ERRNO (0 = taken) and
	 * A_STATE (the state after the step: TO_STATE, FROM_STATE, or ERROR).
	 * A fault that sends the device to ERROR outside SET (read, write,
	 * precopy info, data size, reset) reports TO_STATE = STATE = ERROR.
	 */
	VFIO_MIG_EMU_CMD_EVENT_STATE,
	VFIO_MIG_EMU_CMD_EVENT_SESSION,	/* A_SESSION_KIND, A_SESSION_OPEN */
	/* A_FAULT_ID, A_FAULT (the fault as FAULT_GET shows it, counts
	 * included) and A_FROM_STATE/A_TO_STATE for the SET_STATE site
	 */
	VFIO_MIG_EMU_CMD_EVENT_FAULT,
	/* A_NR_RESOURCES (total now), A_BYTES (critical data added:
	 * RESOURCE records, header + payload)
	 */
	VFIO_MIG_EMU_CMD_EVENT_CRITICAL,
	VFIO_MIG_EMU_CMD_EVENT_RESET,	/* VFIO_DEVICE_RESET, A_FROM_STATE */

	/* admin: A_QUIRKS [+ A_UUID]; see "Seeded driver bugs" below */
	VFIO_MIG_EMU_CMD_QUIRKS_SET,
	/* doit: [A_UUID]; replies A_QUIRKS (+ A_UUID) */
	VFIO_MIG_EMU_CMD_QUIRKS_GET,

	__VFIO_MIG_EMU_CMD_MAX,
};

#define VFIO_MIG_EMU_CMD_MAX		(__VFIO_MIG_EMU_CMD_MAX - 1)

enum vfio_mig_emu_attr {
	VFIO_MIG_EMU_A_UNSPEC,
	VFIO_MIG_EMU_A_PAD,
	VFIO_MIG_EMU_A_UUID,		/* string, the mdev uuid (36 chars) */
	VFIO_MIG_EMU_A_PROFILE,		/* u32: enum vfio_mig_emu_profile */
	VFIO_MIG_EMU_A_STATE,		/* u32: enum vfio_device_mig_state */
	VFIO_MIG_EMU_A_MEM_SIZE,	/* u64 */
	VFIO_MIG_EMU_A_DEVICE_OPEN,	/* u8: the vfio device fd is open */
	VFIO_MIG_EMU_A_SESSIONS,	/* u32: open migration data files */
	VFIO_MIG_EMU_A_DIGEST,		/* u32: as BAR0's DIGEST register */
	VFIO_MIG_EMU_A_NR_RESOURCES,	/* u32 */
	VFIO_MIG_EMU_A_COUNTERS,	/* nest: enum vfio_mig_emu_counter */
	VFIO_MIG_EMU_A_PRECOPY,		/* nest: enum vfio_mig_emu_precopy */
	VFIO_MIG_EMU_A_KNOBS,		/* nest: enum vfio_mig_emu_knob */
	VFIO_MIG_EMU_A_FAULT,		/* nest: enum vfio_mig_emu_fault_attr */
	VFIO_MIG_EMU_A_FAULT_ID,	/* u32 */
	VFIO_MIG_EMU_A_WORKLOAD_ACTION,	/* u32: enum vfio_mig_emu_workload */
	VFIO_MIG_EMU_A_WORKLOAD_COUNT,	/* u32: pages or resources */
	VFIO_MIG_EMU_A_EVENT_SEQ,	/* u64 */
	VFIO_MIG_EMU_A_TIMESTAMP_NS,	/* u64: ktime_get_ns() */
	VFIO_MIG_EMU_A_FROM_STATE,	/* u32 */
	VFIO_MIG_EMU_A_TO_STATE,	/* u32 */
	VFIO_MIG_EMU_A_ERRNO,		/* u32: 0, or the positive errno */
	VFIO_MIG_EMU_A_SESSION_KIND,	/* u32: enum vfio_mig_emu_session */
	VFIO_MIG_EMU_A_SESSION_OPEN,	/* u8: 1 opened, 0 ended */
	VFIO_MIG_EMU_A_BYTES,		/* u64 */
	VFIO_MIG_EMU_A_STATS,		/* nest: enum vfio_mig_emu_stat */
	VFIO_MIG_EMU_A_KMEM,		/* nest: enum vfio_mig_emu_kmem (DEV_GET) */
	VFIO_MIG_EMU_A_QUIRKS,		/* u64: mask of BIT(enum vfio_mig_emu_quirk) */
	/* u32, DEV_GET request: VFIO_MIG_EMU_QUERY_* (unknown bits: EINVAL) */
	VFIO_MIG_EMU_A_QUERY,
	__VFIO_MIG_EMU_A_MAX,
};

#define VFIO_MIG_EMU_A_MAX		(__VFIO_MIG_EMU_A_MAX - 1)

/*
 * DEV_GET's A_QUERY: what the reply carries beyond the cheap fields.
 * DIGEST (needs CAP_NET_ADMIN): A_DIGEST, a crc32c over every page of
 * device memory, as BAR0's DIGEST register.
 */
#define VFIO_MIG_EMU_QUERY_DIGEST	(1u << 0)
#define VFIO_MIG_EMU_QUERY_ALL		VFIO_MIG_EMU_QUERY_DIGEST

enum vfio_mig_emu_counter {
	VFIO_MIG_EMU_CNT_UNSPEC,
	VFIO_MIG_EMU_CNT_PAD,
	VFIO_MIG_EMU_CNT_TRANSITIONS,	/* u64: arcs taken */
	VFIO_MIG_EMU_CNT_TRANSITION_ERRORS, /* u64: SETs that failed */
	VFIO_MIG_EMU_CNT_BYTES_SAVED,	/* u64: read from saving files */
	VFIO_MIG_EMU_CNT_BYTES_LOADED,	/* u64: written to resuming files */
	VFIO_MIG_EMU_CNT_PRECOPY_QUERIES, /* u64 */
	VFIO_MIG_EMU_CNT_FAULTS_HIT,	/* u64 */
	VFIO_MIG_EMU_CNT_RESETS,	/* u64 */
	__VFIO_MIG_EMU_CNT_MAX,
};

#define VFIO_MIG_EMU_CNT_MAX		(__VFIO_MIG_EMU_CNT_MAX - 1)

enum vfio_mig_emu_precopy {
	VFIO_MIG_EMU_PRECOPY_UNSPEC,
	VFIO_MIG_EMU_PRECOPY_PAD,
	VFIO_MIG_EMU_PRECOPY_INITIAL_BYTES,	/* u64 */
	VFIO_MIG_EMU_PRECOPY_DIRTY_BYTES,	/* u64 */
	VFIO_MIG_EMU_PRECOPY_STOP_COPY_BYTES,	/* u64 */
	__VFIO_MIG_EMU_PRECOPY_MAX,
};

#define VFIO_MIG_EMU_PRECOPY_MAX	(__VFIO_MIG_EMU_PRECOPY_MAX - 1)

/* Knobs: every one optional in KNOBS_SET, all present in replies. */
enum vfio_mig_emu_knob {
	VFIO_MIG_EMU_KNOB_UNSPEC,
	VFIO_MIG_EMU_KNOB_PAD,
	/* nest (repeatable): A_FROM_STATE, A_TO_STATE (either may be
	 * VFIO_MIG_EMU_ANY_STATE) and KNOB_DELAY_US: time each matching
	 * arc takes, 0 .. VFIO_MIG_EMU_MAX_DELAY_US.
	 */
	VFIO_MIG_EMU_KNOB_ARC_DELAY,
	VFIO_MIG_EMU_KNOB_DELAY_US,		/* u32, inside ARC_DELAY */
	/* u32: destination cost of loading critical data, ns per KiB */
	VFIO_MIG_EMU_KNOB_LOAD_NS_PER_KIB,
	/* u32: destination cost per resource loaded, microseconds */
	VFIO_MIG_EMU_KNOB_LOAD_US_PER_RESOURCE,
	/* u64: device memory size; only while no file is open on it */
	VFIO_MIG_EMU_KNOB_MEM_SIZE,
	/* u32: bytes of context data per resource (critical data size) */
	VFIO_MIG_EMU_KNOB_RESOURCE_BYTES,
	/* u32: pages per second the background workload dirties, 0 = off */
	VFIO_MIG_EMU_KNOB_DIRTY_RATE,
	/* u32: enum vfio_mig_emu_reinit_policy (PRECOPY_INFOv2 REINIT) */
	VFIO_MIG_EMU_KNOB_REINIT_POLICY,
	/* u32: 1 = refuse the PRECOPY_INFOv2 opt-in (a pre-7.1 driver) */
	VFIO_MIG_EMU_KNOB_REFUSE_PRECOPY_V2,
	__VFIO_MIG_EMU_KNOB_MAX,
};

#define VFIO_MIG_EMU_KNOB_MAX		(__VFIO_MIG_EMU_KNOB_MAX - 1)

/*
 * Knob limits (inclusive) and defaults.  KNOBS_SET checks every value
 * against its limit (EINVAL/ERANGE with an extack naming the attribute)
 * and changes nothing unless all are valid; the reply carries every knob,
 * ARC_DELAY nests only for arcs with a non-zero delay.
 *
 *   knob                   default   limit
 *   ARC_DELAY.DELAY_US     0         VFIO_MIG_EMU_MAX_DELAY_US; FROM/TO are
 *                                    1..7 (enum vfio_device_mig_state
 *                                    without ERROR) or ANY, default ANY;
 *                                    nests apply in order, later win
 *   LOAD_NS_PER_KIB        0         VFIO_MIG_EMU_MAX_LOAD_NS_PER_KIB
 *   LOAD_US_PER_RESOURCE   0         VFIO_MIG_EMU_MAX_LOAD_US_PER_RESOURCE
 *   MEM_SIZE               VFIO_MIG_EMU_DEFAULT_MEM_SIZE, MIN..MAX_MEM_SIZE,
 *                                    a multiple of VFIO_MIG_EMU_PAGE_SIZE;
 *                                    EBUSY while the device fd is open; a
 *                                    change resets the device content
 *   RESOURCE_BYTES         0         VFIO_MIG_EMU_MAX_RESOURCE_BYTES
 *   DIRTY_RATE             0 (off)   VFIO_MIG_EMU_MAX_DIRTY_RATE pages/s
 *   REINIT_POLICY          FOLD      FOLD or DISCARD
 *   REFUSE_PRECOPY_V2      0         0 or 1; EOPNOTSUPP for 1 where the
 *                                    vfio core takes the opt-in (7.1+)
 *
 * Arc delay: each arc of SET MIG_DEVICE_STATE sleeps its delay (a signal
 * cuts the sleep short) before the arc runs.  One SET sleeps at most
 * VFIO_MIG_EMU_MAX_DELAY_US in all, its arc delays and SET_STATE DELAY
 * faults together, however many arcs its path has.
 *
 * Load cost: on the resuming side each RESOURCE record, once applied,
 * costs LOAD_US_PER_RESOURCE microseconds plus LOAD_NS_PER_KIB
 * nanoseconds per KiB of its payload; the write() that completes the
 * record sleeps that long (interruptible), and one write() sleeps at most
 * VFIO_MIG_EMU_MAX_DELAY_US in all (its WRITE DELAY fault included).
 *
 * Sleeps and waits: every sleep is interruptible, and the calls that wait
 * for a device or a session another call holds through a sleep (SET and
 * GET MIG_DEVICE_STATE, MIG_DATA_SIZE, VFIO_DEVICE_RESET, the
 * PRECOPY_INFOv2 opt-in, opening the device, read(), write(),
 * VFIO_MIG_GET_PRECOPY_INFO) wait killably: a fatal signal ends the wait
 * with EINTR (RESET's reset stays queued and runs when the holder is
 * done).  What cannot fail (ending a session, entering STOP_COPY,
 * RESUMING -> STOP's check, closing) cuts short a data file's DELAY or
 * load cost in progress instead of waiting it out.
 *
 * RESOURCE_BYTES: context bytes each RESOURCE record carries after
 * struct vfio_mig_emu_resource (stream minor 1, see below); taken when a
 * saving session starts.
 *
 * DIRTY_RATE: while the device fd is open and the device is RUNNING or
 * PRE_COPY, a background workload runs the dirty doorbell's steps at
 * this rate (in ticks of about 10 ms).
 *
 * REINIT_POLICY, for a PRECOPY_INFOv2 session that gets new resources:
 * FOLD: every page dirty at that moment joins the new initial data.
 * DISCARD: those pages are set aside and become dirty again once the new
 * initial data has been read.  Either way dirty_bytes restarts from zero.
 *
 * REFUSE_PRECOPY_V2: SET VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 fails with
 * ENOTTY, as on a driver that predates the feature, so that a consumer
 * which opts in when it can (QEMU 11.1) takes the legacy path on the same
 * kernel.  An opt-in already taken stays.
 */
#define VFIO_MIG_EMU_ANY_STATE		0xffffffffu
#define VFIO_MIG_EMU_MAX_DELAY_US	(10 * 1000 * 1000)
#define VFIO_MIG_EMU_MIN_MEM_SIZE	VFIO_MIG_EMU_PAGE_SIZE
#define VFIO_MIG_EMU_MAX_MEM_SIZE	(4ULL << 30)
#define VFIO_MIG_EMU_MAX_LOAD_NS_PER_KIB	(10 * 1000 * 1000)
#define VFIO_MIG_EMU_MAX_LOAD_US_PER_RESOURCE	(1000 * 1000)
#define VFIO_MIG_EMU_MAX_RESOURCE_BYTES	\
	(VFIO_MIG_EMU_MAX_RECORD_PAYLOAD - 16)
#define VFIO_MIG_EMU_MAX_DIRTY_RATE	(256 * 1024)

enum vfio_mig_emu_reinit_policy {
	/* unread dirty data is folded into the new initial data (mlx5) */
	VFIO_MIG_EMU_REINIT_FOLD = 0,
	/* unread dirty data is discarded and re-sent after the new initial */
	VFIO_MIG_EMU_REINIT_DISCARD = 1,
};

enum vfio_mig_emu_workload {
	VFIO_MIG_EMU_WORKLOAD_DIRTY = 1,	/* dirty COUNT pages */
	VFIO_MIG_EMU_WORKLOAD_RECONFIG = 2,	/* add COUNT resources */
};

enum vfio_mig_emu_session {
	VFIO_MIG_EMU_SESSION_SAVING = 1,
	VFIO_MIG_EMU_SESSION_RESUMING = 2,
};

/* Fault injection: where, when and what. */
enum vfio_mig_emu_fault_attr {
	VFIO_MIG_EMU_FAULT_UNSPEC,
	VFIO_MIG_EMU_FAULT_PAD,
	VFIO_MIG_EMU_FAULT_SITE,	/* u32: enum vfio_mig_emu_fault_site */
	/* u32: for SITE_SET_STATE, the arc (VFIO_MIG_EMU_ANY_STATE ok) */
	VFIO_MIG_EMU_FAULT_FROM_STATE,
	VFIO_MIG_EMU_FAULT_TO_STATE,
	VFIO_MIG_EMU_FAULT_TRIGGER,	/* u32: enum vfio_mig_emu_fault_trigger */
	VFIO_MIG_EMU_FAULT_N,		/* u32: the trigger's N, >= 1 */
	VFIO_MIG_EMU_FAULT_PROBABILITY_PPM, /* u32: 1 .. 1000000 */
	VFIO_MIG_EMU_FAULT_SEED,	/* u64: PRNG seed of TRIGGER_RANDOM */
	VFIO_MIG_EMU_FAULT_EFFECT,	/* u32: enum vfio_mig_emu_fault_effect */
	/* u32: 1 .. VFIO_MIG_EMU_MAX_FAULT_ERRNO, for FAIL effects */
	VFIO_MIG_EMU_FAULT_ERRNO,
	VFIO_MIG_EMU_FAULT_DELAY_US,	/* u32: for EFFECT_DELAY */
	VFIO_MIG_EMU_FAULT_CALLS,	/* u64, reply: calls seen at the site */
	VFIO_MIG_EMU_FAULT_HITS,	/* u64, reply: times it fired */
	VFIO_MIG_EMU_FAULT_ID,		/* u32, reply: same as A_FAULT_ID */
	__VFIO_MIG_EMU_FAULT_MAX,
};

#define VFIO_MIG_EMU_FAULT_MAX		(__VFIO_MIG_EMU_FAULT_MAX - 1)

enum vfio_mig_emu_fault_site {
	VFIO_MIG_EMU_SITE_SET_STATE = 1,	/* one arc of SET MIG_DEVICE_STATE */
	VFIO_MIG_EMU_SITE_READ = 2,		/* read() of the saving file */
	VFIO_MIG_EMU_SITE_WRITE = 3,		/* write() of the resuming file */
	VFIO_MIG_EMU_SITE_PRECOPY_INFO = 4,	/* VFIO_MIG_GET_PRECOPY_INFO */
	VFIO_MIG_EMU_SITE_DATA_SIZE = 5,	/* MIG_DATA_SIZE */
	VFIO_MIG_EMU_SITE_RESET = 6,		/* VFIO_DEVICE_RESET */
	VFIO_MIG_EMU_SITE_OPEN = 7,		/* opening the device fd */
};

enum vfio_mig_emu_fault_trigger {
	VFIO_MIG_EMU_TRIGGER_NTH = 1,		/* the Nth call only */
	VFIO_MIG_EMU_TRIGGER_EVERY_NTH = 2,	/* calls N, 2N, 3N, ... */
	VFIO_MIG_EMU_TRIGGER_FIRST_N = 3,	/* calls 1 .. N */
	VFIO_MIG_EMU_TRIGGER_RANDOM = 4,	/* PROBABILITY_PPM, SEED */
};

enum vfio_mig_emu_fault_effect {
	VFIO_MIG_EMU_EFFECT_FAIL = 1,		/* fail with ERRNO, no change */
	VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR = 2,	/* fail with ERRNO, go to ERROR */
	VFIO_MIG_EMU_EFFECT_DELAY = 3,		/* sleep DELAY_US, then proceed */
	VFIO_MIG_EMU_EFFECT_SHORT_IO = 4,	/* read/write moves half the bytes */
	VFIO_MIG_EMU_EFFECT_CORRUPT = 5,	/* flip one byte of the stream */
	VFIO_MIG_EMU_EFFECT_GARBAGE_SIZE = 6,	/* sizes reported are garbage */
};

#define VFIO_MIG_EMU_MAX_FAULTS		64	/* per device */

/*
 * The largest FAULT_ERRNO: EHWPOISON, the last errno of the uAPI
 * (asm-generic/errno.h).  Numbers from 512 up are kernel-internal
 * (ERESTARTSYS, ERESTARTNOINTR, ...: never meant to reach userspace, some
 * restart the syscall into the same fault) and 134..511 are not errnos.
 */
#define VFIO_MIG_EMU_MAX_FAULT_ERRNO	133

/*
 * Fault semantics.  FAULT_ADD needs SITE and EFFECT.  Without TRIGGER a
 * fault fires on every call (EVERY_NTH, N = 1); NTH, EVERY_NTH and FIRST_N
 * need N (>= 1), RANDOM needs PROBABILITY_PPM (SEED defaults to 0; the
 * fault's own splitmix64 PRNG, seeded at FAULT_ADD, draws z per call and
 * fires when (z >> 32) % 1000000 < ppm).  ERRNO (default EIO, 0 or more
 * than 4095: ERANGE; 134..4095, kernel-internal or not an errno: EINVAL
 * "FAULT_ERRNO ... userspace can see 1..133") only with FAIL and
 * FAIL_TO_ERROR, DELAY_US (required) only with DELAY,
 * FROM_STATE/TO_STATE (1..7 or ANY, default ANY) only with SITE_SET_STATE.
 * Anything else is refused with EINVAL (ERANGE for out-of-range values)
 * and an extack naming the attribute; a device's 65th fault gets ENOSPC.
 *
 * Every fault matching a call counts it (CALLS); the first one, in the
 * order added, whose trigger fires is applied and counts a HIT, bumps
 * CNT_FAULTS_HIT and sends EVENT_FAULT.  Faults are per device.
 *
 *   site          FAIL FAIL_TO_ERROR DELAY SHORT_IO CORRUPT GARBAGE_SIZE
 *   SET_STATE      x        x          x
 *   READ           x        x          x      x        x
 *   WRITE          x        x          x      x        x
 *   PRECOPY_INFO   x        x          x                       x
 *   DATA_SIZE      x        x          x                       x
 *   RESET          x        x          x
 *   OPEN           x                   x
 *
 * SET_STATE is asked once per arc, before the arc runs (after the arc's
 * delay knob): FAIL ends the SET with the errno, the device staying in
 * the arc's from state (earlier arcs of the path are kept); FAIL_TO_ERROR
 * ends the sessions and leaves the device in ERROR.  Data file sites are
 * asked once per read()/write()/ioctl that passes the basic checks
 * (session alive, PRE_COPY for the ioctl); DATA_SIZE and RESET once per
 * call; OPEN when the vfio device fd is opened (FAIL: open fails).
 * FAIL returns -ERRNO and changes nothing (a failed write consumes no
 * byte); FAIL_TO_ERROR returns -ERRNO and sends the device to ERROR (ending
 * its sessions), reported by EVENT_STATE; at a data file site only while
 * that file's session is still the device's (a session a concurrent SET or
 * reset ended takes no later state down).  DELAY sleeps DELAY_US (see
 * "Sleeps and waits" above: bounded per call, cut short at a data file
 * when its session ends), then the call proceeds.  SHORT_IO: the call moves at most half the bytes asked
 * (at least 1).  CORRUPT: READ flips (xor 0xff) the middle byte of what
 * the reader received; WRITE flips the middle byte of the first chunk
 * taken into the parse buffer, before parsing (the record crc catches
 * it).  GARBAGE_SIZE: PRECOPY_INFO reports initial_bytes = dirty_bytes =
 * U64_MAX (flags as usual); DATA_SIZE reports ULONG_MAX.  Nothing inside
 * the device changes.
 *
 * FAULT_GET: doit (plain request) replies with one message carrying an
 * A_FAULT nest per fault, or only A_FAULT_ID's (ENOENT if unknown); dumpit
 * sends a message per fault with A_UUID, A_FAULT_ID and A_FAULT.  Nests
 * carry FAULT_ID, SITE, TRIGGER, EFFECT, CALLS, HITS and the attributes
 * the fault was given (or their defaults).
 */

enum vfio_mig_emu_stat {
	VFIO_MIG_EMU_STAT_UNSPEC,
	VFIO_MIG_EMU_STAT_DEVICES,	/* u32: live devices */
	VFIO_MIG_EMU_STAT_FILES,	/* u32: live migration data files */
	VFIO_MIG_EMU_STAT_BUFFERS,	/* u32: live staging buffers */
	VFIO_MIG_EMU_STAT_PAGES,	/* u32: device memory pages held */
	__VFIO_MIG_EMU_STAT_MAX,
};

#define VFIO_MIG_EMU_STAT_MAX		(__VFIO_MIG_EMU_STAT_MAX - 1)

/*
 * Kernel memory the module holds for one device (DEV_GET, A_KMEM), in
 * bytes as allocated (the size asked of the allocator; slab rounding and
 * xarray nodes, about 0.2 % of PAGES, are not included):
 *   PAGES      materialized device memory pages (first write allocates;
 *              never-written pages cost nothing)
 *   BITMAPS    the device's present/dirty bitmaps and those of an open
 *              saving session (3 more): 1 bit per page each
 *   BUFFERS    staging buffers and session structs of open data files
 *              (one record each: the saving path streams from device
 *              memory, it never holds a second copy of the state)
 *   RESOURCES  the resource table
 *   DIGEST     the digest's cache of CRCs (one bit per page, one CRC and
 *              one bit per 16 pages, and 4 bytes per page in blocks of
 *              1024 pages allocated with the block's first written page)
 */
enum vfio_mig_emu_kmem {
	VFIO_MIG_EMU_KMEM_UNSPEC,
	VFIO_MIG_EMU_KMEM_PAD,
	VFIO_MIG_EMU_KMEM_PAGES,	/* u64 */
	VFIO_MIG_EMU_KMEM_BITMAPS,	/* u64 */
	VFIO_MIG_EMU_KMEM_BUFFERS,	/* u64 */
	VFIO_MIG_EMU_KMEM_RESOURCES,	/* u64 */
	VFIO_MIG_EMU_KMEM_DIGEST,	/* u64 */
	__VFIO_MIG_EMU_KMEM_MAX,
};

#define VFIO_MIG_EMU_KMEM_MAX		(__VFIO_MIG_EMU_KMEM_MAX - 1)

/*
 * Seeded driver bugs ("quirks").  Each bit makes the module deviate from
 * the VFIO migration uAPI in one way a real driver has been seen to (or
 * plausibly could), so that a validation suite can prove it notices: the
 * suite's mutation score.  A quirk only changes what userspace sees; the
 * module stays memory-safe and WARN-free with any combination on.
 *
 * QUIRKS_SET (admin) replaces a mask: without A_UUID the module-global
 * one (every device, present and future; cleared when the module loads),
 * with A_UUID that device's own.  A device behaves as the OR of both.
 * A bit at or above VFIO_MIG_EMU_QUIRK_COUNT fails the request with
 * EINVAL and an extack pointing at A_QUIRKS (NLMSGERR_ATTR_POLICY carries
 * the valid mask); nothing changes.  The reply is QUIRKS_GET's.
 * QUIRKS_GET replies with A_QUIRKS, the mask of the scope asked (A_UUID:
 * the device's own, without: the global one).
 *
 * A quirk is consulted by the call it bends, so it takes effect at the
 * next such call (stale-fd-readable: when a session ends).  Names
 * (VFIO_MIG_EMU_QUIRK_NAMES) and bits are stable; what each one imitates
 * is in kmod/README.md ("Seeded driver bugs").
 */
enum vfio_mig_emu_quirk {
	VFIO_MIG_EMU_QUIRK_FLAGS_ECHO_AFTER_V2 = 0,
	VFIO_MIG_EMU_QUIRK_REINIT_WITHOUT_OPTIN = 1,
	VFIO_MIG_EMU_QUIRK_INITIAL_GROWS_NO_REINIT = 2,
	VFIO_MIG_EMU_QUIRK_DIRTY_KEPT_ON_REINIT = 3,
	VFIO_MIG_EMU_QUIRK_PRECOPY_EOF_ZERO = 4,
	VFIO_MIG_EMU_QUIRK_STOPCOPY_ENOMSG = 5,
	VFIO_MIG_EMU_QUIRK_PRECOPY_INFO_ANY_STATE = 6,
	VFIO_MIG_EMU_QUIRK_STOPCOPY_TO_PRECOPY = 7,
	VFIO_MIG_EMU_QUIRK_COMBO_VIA_SAVING = 8,
	VFIO_MIG_EMU_QUIRK_FAILED_ARC_OFF_PATH = 9,
	VFIO_MIG_EMU_QUIRK_STALE_FD_READABLE = 10,
	VFIO_MIG_EMU_QUIRK_NEW_FD_NO_SESSION = 11,
	VFIO_MIG_EMU_QUIRK_TRUNCATED_RESUME_OK = 12,
	VFIO_MIG_EMU_QUIRK_DATA_SIZE_LOW = 13,
	VFIO_MIG_EMU_QUIRK_INTERIOR_STATE_VISIBLE = 14,
	VFIO_MIG_EMU_QUIRK_P2P_WITHOUT_FLAG = 15,
	VFIO_MIG_EMU_QUIRK_RESET_KEEPS_STATE = 16,
	VFIO_MIG_EMU_QUIRK_INITIAL_STUCK = 17,
	VFIO_MIG_EMU_QUIRK_WRITE_AFTER_END = 18,
	VFIO_MIG_EMU_QUIRK_SET_STATE_NOOP = 19,
	VFIO_MIG_EMU_QUIRK_POLL_NEVER_READY = 20,
	VFIO_MIG_EMU_QUIRK_ERROR_EXIT_BY_SET = 21,
	VFIO_MIG_EMU_QUIRK_COUNT,
};

#define VFIO_MIG_EMU_QUIRKS_ALL	((1ULL << VFIO_MIG_EMU_QUIRK_COUNT) - 1)

#define VFIO_MIG_EMU_QUIRK_NAMES {					\
	"flags-echo-after-v2", "reinit-without-optin",			\
	"initial-grows-no-reinit", "dirty-kept-on-reinit",		\
	"precopy-eof-zero", "stopcopy-enomsg",				\
	"precopy-info-any-state", "stopcopy-to-precopy",		\
	"combo-via-saving", "failed-arc-off-path",			\
	"stale-fd-readable", "new-fd-no-session",			\
	"truncated-resume-ok", "data-size-low",				\
	"interior-state-visible", "p2p-without-flag",			\
	"reset-keeps-state", "initial-stuck",				\
	"write-after-end", "set-state-noop",				\
	"poll-never-ready", "error-exit-by-set" }

#endif /* _UAPI_VFIO_MIG_EMU_H */
