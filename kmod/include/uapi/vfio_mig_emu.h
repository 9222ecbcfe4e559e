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

/* Default device memory (BAR2) size of a new instance. */
#define VFIO_MIG_EMU_DEFAULT_MEM_SIZE	(1024 * 1024)

/* Dirty tracking and stream granularity; independent of the host PAGE_SIZE. */
#define VFIO_MIG_EMU_PAGE_SIZE		4096

/*
 * Regions, at the usual vfio-pci offsets (region index << 40):
 *   VFIO_PCI_CONFIG_REGION_INDEX  256 bytes of PCI config space.
 *                                 0x40..0xff is a vendor-specific scratch
 *                                 area, read/write and migrated.
 *   VFIO_PCI_BAR0_REGION_INDEX    the register file below (4 KiB).
 *   VFIO_PCI_BAR2_REGION_INDEX    device memory, the bulk of the state.
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
#define VFIO_MIG_EMU_REG_MEM_SIZE_LO	0x010	/* RO: BAR2 size, low 32 bits */
#define VFIO_MIG_EMU_REG_MEM_SIZE_HI	0x014	/* RO: BAR2 size, high 32 bits */
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
 *
 * The dirty doorbell runs the emulated workload: for each of N steps a
 * page index and a fill pattern are drawn from the workload PRNG (part of
 * the migrated state) and that page is written, exactly as a guest write
 * to BAR2 would be.
 */

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
 * A saving session emits, in order: the header; the initial data (CONFIG
 * and one RESOURCE per resource); device memory as MEM records for every
 * page written since the device was reset (during PRE_COPY pages written
 * again are sent again); and, in STOP_COPY only, the final CONFIG, REGS
 * and END.  A resuming device starts from all-zero memory, so pages never
 * sent load as zeros.  Later records override earlier ones.
 */
#define VFIO_MIG_EMU_STREAM_MAGIC	0x4d53454d	/* "MESM" */
#define VFIO_MIG_EMU_RECORD_MAGIC	0x4352454d	/* "MERC" */
#define VFIO_MIG_EMU_STREAM_VERSION_MAJOR 1
#define VFIO_MIG_EMU_STREAM_VERSION_MINOR 0

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

#endif /* _UAPI_VFIO_MIG_EMU_H */
