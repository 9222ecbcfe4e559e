/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio_mig_emu: internal declarations shared by the layers of the module.
 *
 *   main.c    module init/exit, mdev parent and types, vfio_device_ops
 *   device.c  the emulated device: config space, BAR0 registers, device
 *             memory, dirty tracking, workload, resources, digest
 *   fsm.c     vfio_migration_ops: the migration state machine and reset
 *   data.c    migration data files (saving and resuming)
 *   stream.c  the migration stream codec
 *   netlink.c the generic netlink control plane: commands and events
 *   fault.c   fault injection
 *   quirk.c   seeded driver bugs (quirk masks)
 *
 * Lock order:
 *   vme_devices_lock -> state_mutex -> vme_migration_file.lock -> dev_lock
 *	-> fault_lock -> event_lock
 * reset_lock (a spinlock) nests inside any of them and nothing is taken
 * under it.  Events are sent with event_lock held (GFP_KERNEL: every
 * caller may sleep) so that their sequence numbers go out in order.
 * irq_lock is taken alone; only the eventfd's own lock nests inside it.
 */
#ifndef VME_H
#define VME_H

#include <linux/atomic.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uuid.h>
#include <linux/vfio.h>
#include <linux/workqueue.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include <uapi/vfio_mig_emu.h>

#include "compat.h"

#define VME_PAGE_SIZE		VFIO_MIG_EMU_PAGE_SIZE
#define VME_CONFIG_SIZE		VFIO_MIG_EMU_CONFIG_SIZE
#define VME_MAX_PAYLOAD		VFIO_MIG_EMU_MAX_RECORD_PAYLOAD
#define VME_PAGES_PER_REC	(VME_MAX_PAYLOAD / VME_PAGE_SIZE)
#define VME_HDR_SIZE		sizeof(struct vfio_mig_emu_stream_header)
#define VME_REC_SIZE		sizeof(struct vfio_mig_emu_record)
#define VME_REGS_SIZE		sizeof(struct vfio_mig_emu_regs)
#define VME_RES_SIZE		sizeof(struct vfio_mig_emu_resource)
/* Staging/parse buffer: one record header plus the largest payload. */
#define VME_BUF_SIZE		(VME_REC_SIZE + VME_MAX_PAYLOAD)

#define VME_MAX_RESOURCES	VFIO_MIG_EMU_MAX_RESOURCES
#define VME_MAX_DIRTY_STEPS	VFIO_MIG_EMU_MAX_DIRTY_STEPS

#define VME_OFFSET_SHIFT	40
#define VME_OFFSET_MASK		((1ULL << VME_OFFSET_SHIFT) - 1)

/* Objects alive right now; read back to prove nothing leaks. */
extern atomic_t vme_live_devices;
extern atomic_t vme_live_files;
extern atomic_t vme_live_buffers;
extern atomic_t vme_live_pages;
extern atomic_t vme_live_eventfds;

struct vme_migration_file;

/* States 0 (ERROR) .. PRE_COPY_P2P: the arc delay table's dimensions. */
#define VME_NR_STATES		(VFIO_DEVICE_STATE_PRE_COPY_P2P + 1)

/*
 * Per-device knobs, see the uAPI header for meaning and limits.  Written
 * under state_mutex (by KNOBS_SET); readers without it use READ_ONCE().
 */
struct vme_knobs {
	u32 arc_delay_us[VME_NR_STATES][VME_NR_STATES];	/* [from][to] */
	u32 load_ns_per_kib;
	u32 load_us_per_resource;
	u32 resource_bytes;
	u32 dirty_rate;
	u32 reinit_policy;
	u32 refuse_precopy_v2;
};

/* An injected fault; every field under vme_device.fault_lock. */
struct vme_fault {
	struct list_head node;
	u32 id;
	u32 site;
	u32 from, to;			/* SET_STATE arc filter */
	u32 trigger;
	u32 n;
	u32 ppm;
	u64 seed;
	u64 prng;			/* TRIGGER_RANDOM state, from seed */
	u32 effect;
	u32 err;
	u32 delay_us;
	u64 calls;
	u64 hits;
};

/* What a fault that fired asks the caller to do (effect 0: nothing). */
struct vme_fault_act {
	u32 effect;
	int err;			/* negative errno for the FAIL effects */
};

/*
 * The digest's memory part, kept so that a digest costs O(pages changed
 * since the last one) plus a step per chunk, not a read of all device
 * memory (which under TCG took seconds per GiB, inside the stop window).
 * For each page: crc32c from 0 over its bytes (0 for an absent page),
 * valid unless the page is stale (written since).  For each chunk of
 * VME_CHUNK_PAGES pages: the CRC of the chunk from 0, valid unless stale.
 * mem_crc: the CRC of all memory from 0, valid when mem_valid.  Page CRCs
 * live in blocks of VME_CRC_BLOCK_PAGES, allocated with the block's first
 * page, so memory never written costs no page CRCs.  Under dev_lock.
 */
#define VME_CHUNK_PAGES		16
#define VME_CRC_BLOCK_PAGES	(VME_PAGE_SIZE / sizeof(u32))

struct vme_digest_cache {
	u32 **blocks;			/* NULL: no page of it present */
	unsigned long nr_blocks;
	unsigned long *page_stale;	/* nr_pages bits */
	u32 *chunk_crc;
	unsigned long *chunk_stale;
	unsigned long nr_chunks;
	u32 last_chunk_factor;		/* the last, maybe shorter chunk's */
	u32 mem_factor;			/* x^(8 mem_size) */
	u32 mem_crc;
	bool mem_valid;
};

struct vme_device {
	struct vfio_device vdev;
	enum vfio_mig_emu_profile profile;
	/*
	 * mem_size, nr_pages, bar2_size, cfg_wmask and the two bitmaps'
	 * sizes change only through the MEM_SIZE knob, while the device is
	 * not open, under state_mutex and dev_lock.
	 */
	u64 mem_size;			/* device memory: BAR2's first bytes */
	unsigned long nr_pages;		/* mem_size / VME_PAGE_SIZE */
	u64 bar2_size;			/* BAR2: mem_size rounded up to 2^n */
	u8 cfg_wmask[VME_CONFIG_SIZE];	/* writable config bits */

	/* Constant after probe: the mdev uuid, as text. */
	char uuid[UUID_STRING_LEN + 1];
	/* On vme_devices, under vme_devices_lock. */
	struct list_head node;

	/*
	 * state_mutex serialises the migration state machine: changes of
	 * mig_state, creation and termination of the data sessions
	 * (saving_migf, resuming_migf) and the data size query.  It is
	 * released through vme_state_mutex_unlock() only, which runs a
	 * reset deferred by reset_lock/deferred_reset.
	 */
	struct mutex state_mutex;
	/* Written with state_mutex and dev_lock held; read under either. */
	enum vfio_device_mig_state mig_state;
	/* Open saving session; written under state_mutex and dev_lock. */
	struct vme_migration_file *saving_migf;
	/* Open resuming session; under state_mutex. */
	struct vme_migration_file *resuming_migf;

	/*
	 * VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 opt-in: written under
	 * state_mutex, read with READ_ONCE() by the saving file at every use.
	 */
	bool precopy_v2;
	/* The vfio device fd is open; written under state_mutex. */
	bool opened;
	/* Knobs; written under state_mutex. */
	struct vme_knobs knobs;

	/* This device's quirk mask (uAPI); READ_ONCE/xchg, no lock. */
	u64 quirks;

	/* Counters, enum vfio_mig_emu_counter; atomic, no lock. */
	atomic64_t counters[VFIO_MIG_EMU_CNT_MAX + 1];
	/* Kernel memory held, enum vfio_mig_emu_kmem, bytes; atomic. */
	atomic64_t kmem[VFIO_MIG_EMU_KMEM_MAX + 1];

	/* fault_lock protects faults, nr_faults, next_fault_id. */
	struct mutex fault_lock;
	struct list_head faults;
	u32 nr_faults;
	u32 next_fault_id;

	/* event_lock protects event_seq and orders the events sent. */
	struct mutex event_lock;
	u64 event_seq;

	/* Background dirtying at knobs.dirty_rate; fields below: work only. */
	struct delayed_work dirty_work;
	u64 dirty_last_ns;
	u64 dirty_carry;

	/*
	 * irq_lock protects err_trigger and req_trigger: the eventfds the
	 * user registered on VFIO_PCI_ERR_IRQ_INDEX and
	 * VFIO_PCI_REQ_IRQ_INDEX (NULL: none), each holding a reference on
	 * its eventfd context until it is replaced, unregistered or the
	 * device fd is closed.
	 */
	struct mutex irq_lock;
	struct eventfd_ctx *err_trigger;
	struct eventfd_ctx *req_trigger;

	/* reset_lock protects deferred_reset. */
	spinlock_t reset_lock;
	bool deferred_reset;

	/*
	 * dev_lock protects the emulated device content: config, scratch,
	 * prng, the resource table, the memory pages and both bitmaps.  It
	 * is the innermost lock and is never held across a user copy.
	 */
	struct mutex dev_lock;
	u8 config[VME_CONFIG_SIZE];
	u32 scratch[VFIO_MIG_EMU_NR_SCRATCH];
	u64 prng;
	struct vfio_mig_emu_resource *res;	/* nr_res valid of res_cap */
	u32 nr_res;
	u32 res_cap;
	struct xarray pages;		/* page index -> VME_PAGE_SIZE bytes */
	unsigned long *present;		/* pages materialized */
	unsigned long *dirty;		/* pages to (re)send */
	struct vme_digest_cache digest;
	bool res_changed;		/* resources added during a session */
};

static inline struct vme_device *to_vme(struct vfio_device *vdev)
{
	return container_of(vdev, struct vme_device, vdev);
}

/* quirk.c */
extern u64 vme_quirks_global;
void vme_quirks_set(struct vme_device *vme, u64 mask);
u64 vme_quirks_get(struct vme_device *vme);

/* Is seeded bug @q (enum vfio_mig_emu_quirk) on for @vme? */
static inline bool vme_quirk(const struct vme_device *vme, unsigned int q)
{
	return (READ_ONCE(vme_quirks_global) | READ_ONCE(vme->quirks)) &
	       BIT_ULL(q);
}

static inline void vme_count(struct vme_device *vme, unsigned int cnt, u64 n)
{
	atomic64_add(n, &vme->counters[cnt]);
}

static inline void vme_kmem(struct vme_device *vme, unsigned int kind,
			    s64 delta)
{
	atomic64_add(delta, &vme->kmem[kind]);
}

/* Bytes bitmap_zalloc() asks for @nr_pages bits. */
static inline s64 vme_bitmap_bytes(unsigned long nr_pages)
{
	return BITS_TO_LONGS(nr_pages) * sizeof(unsigned long);
}

/* main.c */
extern struct mutex vme_devices_lock;
extern struct list_head vme_devices;

/* device.c */
int vme_workload_locked(struct vme_device *vme, u32 action, u32 count);
int vme_device_resize_locked(struct vme_device *vme, u64 mem_size);
void vme_dirty_work_update_locked(struct vme_device *vme);
void vme_dirty_work_fn(struct work_struct *work);
u64 vme_resource_record_bytes(u32 resource_bytes);
void vme_resource_context(u64 cookie, u8 *buf, u32 len);
bool vme_resource_context_ok(u64 cookie, const u8 *buf, u32 len);

int vme_device_init(struct vme_device *vme, enum vfio_mig_emu_profile profile,
		    u64 mem_size);
void vme_device_fini(struct vme_device *vme);
void vme_device_reset_locked(struct vme_device *vme);
void vme_set_mig_state_locked(struct vme_device *vme,
			      enum vfio_device_mig_state state);
ssize_t vme_region_read(struct vme_device *vme, char __user *buf,
			size_t count, loff_t pos);
ssize_t vme_region_write(struct vme_device *vme, const char __user *buf,
			 size_t count, loff_t pos);
u32 vme_digest_locked(struct vme_device *vme);
u64 vme_mem_stream_bytes(const unsigned long *map, unsigned long nr_pages);
void vme_dirty_start_locked(struct vme_device *vme);
u32 vme_dirty_take_locked(struct vme_device *vme, unsigned long *map,
			  void *buf, u64 *offset, u32 *page_crcs);
void vme_save_regs_locked(struct vme_device *vme,
			  struct vfio_mig_emu_regs *regs);
int vme_load_config_locked(struct vme_device *vme, const void *cfg,
			   const char **why);
int vme_load_regs_locked(struct vme_device *vme,
			 const struct vfio_mig_emu_regs *regs,
			 const char **why);
int vme_load_mem_locked(struct vme_device *vme, u64 offset, const void *data,
			u32 len, const u32 *page_crcs, const char **why);
int vme_load_resource_locked(struct vme_device *vme,
			     const struct vfio_mig_emu_resource *res,
			     const char **why);

/* fsm.c */
extern const struct vfio_migration_ops vme_migration_ops;
int vme_feature_mig_data_size(struct vfio_device *vdev, u32 flags,
			      void __user *arg, size_t argsz);
void vme_state_mutex_unlock(struct vme_device *vme);
int vme_reset(struct vme_device *vme);
void vme_error_locked(struct vme_device *vme);
void vme_fault_to_error(struct vme_device *vme, int err,
			struct vme_migration_file *migf);
void vme_open_locked(struct vme_device *vme);
void vme_close(struct vme_device *vme);

/* data.c */
struct vme_migration_file *vme_save_file_create(struct vme_device *vme,
						bool stop_copy);
struct vme_migration_file *vme_resume_file_create(struct vme_device *vme);
struct file *vme_migf_file(struct vme_migration_file *migf);
void vme_save_enter_stop_copy(struct vme_migration_file *migf);
int vme_resume_finish(struct vme_migration_file *migf, const char **why);
void vme_migf_disable(struct vme_migration_file *migf);
void vme_migf_wake(struct vme_migration_file *migf);
int vme_save_remaining(struct vme_migration_file *migf, u64 *remaining);
u64 vme_stop_copy_bytes_locked(struct vme_device *vme);
u64 vme_stop_copy_bytes_dev_locked(struct vme_device *vme);
int vme_save_precopy_figures(struct vme_migration_file *migf, u64 *initial,
			     u64 *dirty);

/* fault.c */
void vme_faults_init(struct vme_device *vme);
void vme_faults_fini(struct vme_device *vme);
/*
 * A sleep's limits (vme_sleep()): what is left of the call's bound on its
 * sleeps (at most VFIO_MIG_EMU_MAX_DELAY_US in all), and optionally a
 * wait queue and a count: non-zero when someone needs the lock the sleep
 * is taken under, which ends the sleep.
 */
struct vme_sleep {
	u32 budget_us;
	wait_queue_head_t *wq;
	atomic_t *abort;
};

int vme_fault_check(struct vme_device *vme, u32 site, u32 from, u32 to,
		    struct vme_fault_act *act);
int vme_fault_check_sleep(struct vme_device *vme, u32 site, u32 from, u32 to,
			  struct vme_fault_act *act, struct vme_sleep *sl);
int vme_fault_add(struct vme_device *vme, struct vme_fault *f,
		  struct vme_fault *added);
int vme_fault_clear(struct vme_device *vme, u32 id, bool all);
void vme_sleep(struct vme_sleep *sl, u32 us);

/* netlink.c */
int vme_netlink_init(void);
void vme_netlink_exit(void);
void vme_event_state(struct vme_device *vme, u32 from, u32 to, int err,
		     u32 after);
void vme_event_session(struct vme_device *vme, u32 kind, bool open);
void vme_event_fault(struct vme_device *vme, const struct vme_fault *f,
		     u32 from, u32 to);
void vme_event_critical(struct vme_device *vme, u32 nr_res, u64 bytes);
void vme_event_reset(struct vme_device *vme, u32 from);

/* stream.c */
u32 vme_crc(const void *data, size_t len);
void vme_crc_init(void);
u32 vme_crc_mul(u32 a, u32 b);
u32 vme_crc_zeros_factor(u64 bytes);
u32 vme_crc_extend_pages(u32 crc, const u32 *page_crcs, unsigned int nr);
u32 vme_crc_extend_chunks(u32 crc, const u32 *chunk_crcs, unsigned long nr);
void vme_stream_header_encode(struct vfio_mig_emu_stream_header *hdr,
			      u32 profile, u64 mem_size);
int vme_stream_header_check(const struct vfio_mig_emu_stream_header *hdr,
			    u32 profile, u64 mem_size, const char **why);
void vme_record_encode(struct vfio_mig_emu_record *rec, u16 type, u32 seq,
		       u32 length, u64 arg, const void *payload,
		       const u32 *page_crcs);
int vme_record_check(const struct vfio_mig_emu_record *rec, u32 seq,
		     u64 mem_size, const char **why);
int vme_record_check_crc(const struct vfio_mig_emu_record *rec,
			 const void *payload, u32 *page_crcs, const char **why);

#endif /* VME_H */
