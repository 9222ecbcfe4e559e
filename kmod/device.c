// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_mig_emu: the emulated device.  Config space, the BAR0 register
 * file, device memory (BAR2) that materializes page by page on first
 * write, per-page dirty tracking for migration, the dirtying workload,
 * resources and the state digest.
 *
 * Everything here is protected by vme_device.dev_lock.  Region accessors
 * bounce through kernel buffers so that no user copy happens under it.
 */
#include <linux/bitmap.h>
#include <linux/crc32c.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/log2.h>
#include <linux/pci_regs.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vme.h"

/* BAR2 is a 64-bit prefetchable memory BAR. */
#define VME_BAR2_FLAGS	(PCI_BASE_ADDRESS_MEM_TYPE_64 | \
			 PCI_BASE_ADDRESS_MEM_PREFETCH)
/* Command register bits the user may change. */
#define VME_CMD_WMASK	(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | \
			 PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | \
			 PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)

static bool vme_state_writable(enum vfio_device_mig_state state)
{
	return state == VFIO_DEVICE_STATE_RUNNING ||
	       state == VFIO_DEVICE_STATE_RUNNING_P2P ||
	       state == VFIO_DEVICE_STATE_PRE_COPY ||
	       state == VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

static void vme_put_le(u8 *p, u64 val, unsigned int bytes)
{
	while (bytes--) {
		*p++ = val & 0xff;
		val >>= 8;
	}
}

static void vme_config_defaults(struct vme_device *vme, u8 *cfg)
{
	memset(cfg, 0, VME_CONFIG_SIZE);
	vme_put_le(cfg + PCI_VENDOR_ID, VFIO_MIG_EMU_PCI_VENDOR_ID, 2);
	vme_put_le(cfg + PCI_DEVICE_ID, VFIO_MIG_EMU_PCI_DEVICE_ID, 2);
	vme_put_le(cfg + PCI_CLASS_REVISION, VFIO_MIG_EMU_PCI_CLASS << 8, 4);
	cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	/* BAR0: 32-bit non-prefetchable memory, address 0. */
	vme_put_le(cfg + PCI_BASE_ADDRESS_2, VME_BAR2_FLAGS, 4);
	vme_put_le(cfg + PCI_SUBSYSTEM_VENDOR_ID, VFIO_MIG_EMU_PCI_VENDOR_ID, 2);
	vme_put_le(cfg + PCI_SUBSYSTEM_ID, VFIO_MIG_EMU_PCI_DEVICE_ID, 2);
}

static void vme_config_wmask_init(struct vme_device *vme)
{
	u8 *m = vme->cfg_wmask;
	u64 bar2 = ~(vme->bar2_size - 1) & ~0xfULL;

	memset(m, 0, VME_CONFIG_SIZE);
	vme_put_le(m + PCI_COMMAND, VME_CMD_WMASK, 2);
	m[PCI_CACHE_LINE_SIZE] = 0xff;
	m[PCI_LATENCY_TIMER] = 0xff;
	/* BAR sizing: address bits above the size are writable. */
	vme_put_le(m + PCI_BASE_ADDRESS_0,
		   ~(u32)(VFIO_MIG_EMU_BAR0_SIZE - 1) & ~0xfU, 4);
	vme_put_le(m + PCI_BASE_ADDRESS_2, bar2, 8);
	m[PCI_INTERRUPT_LINE] = 0xff;
	memset(m + VFIO_MIG_EMU_CONFIG_SCRATCH, 0xff,
	       VME_CONFIG_SIZE - VFIO_MIG_EMU_CONFIG_SCRATCH);
}

/* ---- the digest's CRC cache (struct vme_digest_cache) ------------------ */

static unsigned long vme_digest_nr_chunks(unsigned long nr_pages)
{
	return DIV_ROUND_UP(nr_pages, VME_CHUNK_PAGES);
}

static unsigned long vme_digest_nr_blocks(unsigned long nr_pages)
{
	return DIV_ROUND_UP(nr_pages, VME_CRC_BLOCK_PAGES);
}

/* Bytes of a cache for @nr_pages before any page is written. */
static s64 vme_digest_idle_bytes(unsigned long nr_pages)
{
	unsigned long chunks = vme_digest_nr_chunks(nr_pages);

	return vme_digest_nr_blocks(nr_pages) * sizeof(u32 *) +
	       vme_bitmap_bytes(nr_pages) + chunks * sizeof(u32) +
	       vme_bitmap_bytes(chunks);
}

static void vme_digest_free(struct vme_digest_cache *dc)
{
	kvfree(dc->blocks);
	bitmap_free(dc->page_stale);
	kvfree(dc->chunk_crc);
	bitmap_free(dc->chunk_stale);
	memset(dc, 0, sizeof(*dc));
}

/* A cache for all-zero memory of @nr_pages: every CRC 0, nothing stale. */
static int vme_digest_alloc(struct vme_digest_cache *dc,
			    unsigned long nr_pages)
{
	unsigned long chunks = vme_digest_nr_chunks(nr_pages);
	unsigned long last = nr_pages - (chunks - 1) * VME_CHUNK_PAGES;

	memset(dc, 0, sizeof(*dc));
	dc->nr_blocks = vme_digest_nr_blocks(nr_pages);
	dc->nr_chunks = chunks;
	dc->blocks = kvcalloc(dc->nr_blocks, sizeof(*dc->blocks),
			      GFP_KERNEL_ACCOUNT);
	dc->page_stale = bitmap_zalloc(nr_pages, GFP_KERNEL_ACCOUNT);
	dc->chunk_crc = kvcalloc(chunks, sizeof(u32), GFP_KERNEL_ACCOUNT);
	dc->chunk_stale = bitmap_zalloc(chunks, GFP_KERNEL_ACCOUNT);
	if (!dc->blocks || !dc->page_stale || !dc->chunk_crc ||
	    !dc->chunk_stale) {
		vme_digest_free(dc);
		return -ENOMEM;
	}
	dc->last_chunk_factor = vme_crc_zeros_factor(last * VME_PAGE_SIZE);
	dc->mem_factor = vme_crc_zeros_factor((u64)nr_pages * VME_PAGE_SIZE);
	dc->mem_valid = true;
	return 0;
}

/* All memory freed: back to the all-zero cache, page CRC blocks freed. */
static void vme_digest_clear_locked(struct vme_device *vme)
{
	struct vme_digest_cache *dc = &vme->digest;
	unsigned long b;

	lockdep_assert_held(&vme->dev_lock);
	for (b = 0; b < dc->nr_blocks; b++) {
		if (!dc->blocks[b])
			continue;
		kfree(dc->blocks[b]);
		dc->blocks[b] = NULL;
		vme_kmem(vme, VFIO_MIG_EMU_KMEM_DIGEST, -VME_PAGE_SIZE);
	}
	bitmap_zero(dc->page_stale, vme->nr_pages);
	memset(dc->chunk_crc, 0, dc->nr_chunks * sizeof(u32));
	bitmap_zero(dc->chunk_stale, dc->nr_chunks);
	dc->mem_crc = 0;
	dc->mem_valid = true;
}

/* Page @idx is about to be materialized: its CRC needs a slot. */
static int vme_digest_block_get_locked(struct vme_device *vme,
				       unsigned long idx)
{
	u32 **block = &vme->digest.blocks[idx / VME_CRC_BLOCK_PAGES];

	lockdep_assert_held(&vme->dev_lock);
	if (*block)
		return 0;
	*block = kzalloc(VME_PAGE_SIZE, GFP_KERNEL_ACCOUNT);
	if (!*block)
		return -ENOMEM;
	vme_kmem(vme, VFIO_MIG_EMU_KMEM_DIGEST, VME_PAGE_SIZE);
	return 0;
}

/* Page @idx changed: its CRC, its chunk's and the memory's are stale. */
static void vme_digest_page_changed_locked(struct vme_device *vme,
					   unsigned long idx)
{
	struct vme_digest_cache *dc = &vme->digest;

	lockdep_assert_held(&vme->dev_lock);
	set_bit(idx, dc->page_stale);
	set_bit(idx / VME_CHUNK_PAGES, dc->chunk_stale);
	dc->mem_valid = false;
}

/*
 * Page @idx (present) holds bytes whose CRC from 0 is @crc, computed by
 * the caller on its way through them (a MEM record saved or loaded).
 */
static void vme_digest_page_known_locked(struct vme_device *vme,
					 unsigned long idx, u32 crc)
{
	struct vme_digest_cache *dc = &vme->digest;

	lockdep_assert_held(&vme->dev_lock);
	dc->blocks[idx / VME_CRC_BLOCK_PAGES][idx % VME_CRC_BLOCK_PAGES] = crc;
	clear_bit(idx, dc->page_stale);
}

/* Bring chunk @c up to date: the stale pages of it are read again. */
static void vme_digest_chunk_refresh_locked(struct vme_device *vme,
					    unsigned long c)
{
	struct vme_digest_cache *dc = &vme->digest;
	unsigned long first = c * VME_CHUNK_PAGES, idx = first;
	unsigned long end = min(first + VME_CHUNK_PAGES, vme->nr_pages);
	u32 *block = dc->blocks[first / VME_CRC_BLOCK_PAGES];
	const void *page;

	/* VME_CRC_BLOCK_PAGES is a multiple of VME_CHUNK_PAGES. */
	for_each_set_bit_from(idx, dc->page_stale, end) {
		page = xa_load(&vme->pages, idx);
		block[idx % VME_CRC_BLOCK_PAGES] =
			page ? crc32c(0, page, VME_PAGE_SIZE) : 0;
		clear_bit(idx, dc->page_stale);
	}
	dc->chunk_crc[c] = block ?
		vme_crc_extend_pages(0, block + first % VME_CRC_BLOCK_PAGES,
				     end - first) : 0;
	clear_bit(c, dc->chunk_stale);
}

/*
 * The pages from @first to @end were just made known: settle their chunks
 * whose pages are all known now, for the cost of combining CRCs, so the
 * next digest (in the stop window, say) does not have to.
 */
static void vme_digest_settle_locked(struct vme_device *vme,
				     unsigned long first, unsigned long end)
{
	struct vme_digest_cache *dc = &vme->digest;
	unsigned long c, from, to;

	lockdep_assert_held(&vme->dev_lock);
	for (c = first / VME_CHUNK_PAGES; c <= (end - 1) / VME_CHUNK_PAGES;
	     c++) {
		from = c * VME_CHUNK_PAGES;
		to = min(from + VME_CHUNK_PAGES, vme->nr_pages);
		if (test_bit(c, dc->chunk_stale) &&
		    find_next_bit(dc->page_stale, to, from) >= to)
			vme_digest_chunk_refresh_locked(vme, c);
	}
}

/* crc32c from 0 over all device memory, from the cache. */
static u32 vme_digest_mem_locked(struct vme_device *vme)
{
	struct vme_digest_cache *dc = &vme->digest;
	unsigned long c, n = 0;
	u32 crc;

	lockdep_assert_held(&vme->dev_lock);
	if (dc->mem_valid)
		return dc->mem_crc;

	for_each_set_bit(c, dc->chunk_stale, dc->nr_chunks) {
		vme_digest_chunk_refresh_locked(vme, c);
		/* Up to 4 GiB stale: give the CPU away every MiB. */
		if (!(++n % (SZ_1M / VME_PAGE_SIZE / VME_CHUNK_PAGES)))
			cond_resched();
	}
	c = dc->nr_chunks - 1;
	crc = vme_crc_extend_chunks(0, dc->chunk_crc, c);
	crc = vme_crc_mul(crc, dc->last_chunk_factor) ^ dc->chunk_crc[c];
	dc->mem_crc = crc;
	dc->mem_valid = true;
	return crc;
}

int vme_device_init(struct vme_device *vme, enum vfio_mig_emu_profile profile,
		    u64 mem_size)
{
	vme->profile = profile;
	vme->mem_size = mem_size;
	vme->nr_pages = mem_size / VME_PAGE_SIZE;
	vme->bar2_size = roundup_pow_of_two(mem_size);
	vme_config_wmask_init(vme);

	mutex_init(&vme->dev_lock);
	xa_init(&vme->pages);
	vme->present = bitmap_zalloc(vme->nr_pages, GFP_KERNEL);
	vme->dirty = bitmap_zalloc(vme->nr_pages, GFP_KERNEL);
	if (!vme->present || !vme->dirty ||
	    vme_digest_alloc(&vme->digest, vme->nr_pages)) {
		bitmap_free(vme->present);
		bitmap_free(vme->dirty);
		mutex_destroy(&vme->dev_lock);
		return -ENOMEM;
	}
	vme_kmem(vme, VFIO_MIG_EMU_KMEM_BITMAPS,
		 2 * vme_bitmap_bytes(vme->nr_pages));
	vme_kmem(vme, VFIO_MIG_EMU_KMEM_DIGEST,
		 vme_digest_idle_bytes(vme->nr_pages));

	mutex_lock(&vme->dev_lock);
	vme_device_reset_locked(vme);
	mutex_unlock(&vme->dev_lock);
	return 0;
}

static void vme_free_pages_locked(struct vme_device *vme)
{
	unsigned long idx, n = 0;
	void *page;

	lockdep_assert_held(&vme->dev_lock);
	xa_for_each(&vme->pages, idx, page) {
		/* Up to 4 GiB of pages: give the CPU away every MiB. */
		if (!(++n % (SZ_1M / VME_PAGE_SIZE)))
			cond_resched();
		kfree(page);
		atomic_dec(&vme_live_pages);
		vme_kmem(vme, VFIO_MIG_EMU_KMEM_PAGES, -VME_PAGE_SIZE);
	}
	xa_destroy(&vme->pages);
	bitmap_zero(vme->present, vme->nr_pages);
	bitmap_zero(vme->dirty, vme->nr_pages);
	vme_digest_clear_locked(vme);
}

void vme_device_fini(struct vme_device *vme)
{
	mutex_lock(&vme->dev_lock);
	vme_free_pages_locked(vme);
	kfree(vme->res);
	vme->res = NULL;
	atomic64_set(&vme->kmem[VFIO_MIG_EMU_KMEM_RESOURCES], 0);
	mutex_unlock(&vme->dev_lock);
	bitmap_free(vme->present);
	bitmap_free(vme->dirty);
	vme_digest_free(&vme->digest);
	vme_kmem(vme, VFIO_MIG_EMU_KMEM_BITMAPS,
		 -2 * vme_bitmap_bytes(vme->nr_pages));
	vme_kmem(vme, VFIO_MIG_EMU_KMEM_DIGEST,
		 -vme_digest_idle_bytes(vme->nr_pages));
	mutex_destroy(&vme->dev_lock);
}

/* Power-on state: memory freed, registers, resources and config reset. */
void vme_device_reset_locked(struct vme_device *vme)
{
	lockdep_assert_held(&vme->dev_lock);
	vme_free_pages_locked(vme);
	vme_config_defaults(vme, vme->config);
	memset(vme->scratch, 0, sizeof(vme->scratch));
	vme->prng = 0;
	kfree(vme->res);
	vme->res = NULL;
	vme->nr_res = 0;
	vme->res_cap = 0;
	atomic64_set(&vme->kmem[VFIO_MIG_EMU_KMEM_RESOURCES], 0);
}

void vme_set_mig_state_locked(struct vme_device *vme,
			      enum vfio_device_mig_state state)
{
	lockdep_assert_held(&vme->state_mutex);
	mutex_lock(&vme->dev_lock);
	vme->mig_state = state;
	mutex_unlock(&vme->dev_lock);
}

/* ---- device memory ---------------------------------------------------- */

static void *vme_page_get_locked(struct vme_device *vme, unsigned long idx)
{
	void *page, *old;

	lockdep_assert_held(&vme->dev_lock);
	page = xa_load(&vme->pages, idx);
	if (page)
		return page;

	if (vme_digest_block_get_locked(vme, idx))
		return NULL;
	page = kzalloc(VME_PAGE_SIZE, GFP_KERNEL_ACCOUNT);
	if (!page)
		return NULL;
	old = xa_store(&vme->pages, idx, page, GFP_KERNEL_ACCOUNT);
	if (xa_is_err(old)) {
		kfree(page);
		return NULL;
	}
	atomic_inc(&vme_live_pages);
	vme_kmem(vme, VFIO_MIG_EMU_KMEM_PAGES, VME_PAGE_SIZE);
	set_bit(idx, vme->present);
	return page;
}

/* A page changed: it must be (re)sent, and a precopy reader may wake. */
static void vme_page_dirtied_locked(struct vme_device *vme, unsigned long idx)
{
	lockdep_assert_held(&vme->dev_lock);
	set_bit(idx, vme->dirty);
	vme_digest_page_changed_locked(vme, idx);
	if (vme->saving_migf)
		vme_migf_wake(vme->saving_migf);
}

static int vme_mem_write_locked(struct vme_device *vme, u64 off,
				const void *src, size_t len)
{
	unsigned long idx = off / VME_PAGE_SIZE;
	u8 *page;

	lockdep_assert_held(&vme->dev_lock);
	page = vme_page_get_locked(vme, idx);
	if (!page)
		return -ENOMEM;
	memcpy(page + off % VME_PAGE_SIZE, src, len);
	vme_page_dirtied_locked(vme, idx);
	return 0;
}

static void vme_mem_read_locked(struct vme_device *vme, u64 off, void *dst,
				size_t len)
{
	u8 *page;

	lockdep_assert_held(&vme->dev_lock);
	page = xa_load(&vme->pages, off / VME_PAGE_SIZE);
	if (page)
		memcpy(dst, page + off % VME_PAGE_SIZE, len);
	else
		memset(dst, 0, len);
}

/*
 * Bytes of MEM records needed to send the pages set in @map: each run of
 * consecutive pages goes out in records of at most VME_PAGES_PER_REC
 * pages, exactly as vme_dirty_take_locked() cuts them.
 */
u64 vme_mem_stream_bytes(const unsigned long *map, unsigned long nr_pages)
{
	unsigned long start, end;
	u64 bytes = 0;

	start = find_first_bit(map, nr_pages);
	while (start < nr_pages) {
		end = find_next_zero_bit(map, nr_pages, start);
		bytes += (u64)(end - start) * VME_PAGE_SIZE +
			 DIV_ROUND_UP(end - start, VME_PAGES_PER_REC) *
			 VME_REC_SIZE;
		start = find_next_bit(map, nr_pages, end);
	}
	return bytes;
}

/* A saving session starts: every materialized page is dirty. */
void vme_dirty_start_locked(struct vme_device *vme)
{
	lockdep_assert_held(&vme->dev_lock);
	bitmap_copy(vme->dirty, vme->present, vme->nr_pages);
}

/*
 * Copy the first run of pages set in @map (vme->dirty or a subset of it;
 * at most VME_PAGES_PER_REC pages) into @buf, clear them in @map and in
 * vme->dirty, and return the byte count (0 when @map is empty); *@offset
 * receives the run's byte offset and @page_crcs the CRC of each page
 * from 0, which the digest's cache keeps too: the bytes are read once.
 */
u32 vme_dirty_take_locked(struct vme_device *vme, unsigned long *map,
			  void *buf, u64 *offset, u32 *page_crcs)
{
	unsigned long start, idx;
	u32 len = 0, crc;

	lockdep_assert_held(&vme->dev_lock);
	start = find_first_bit(map, vme->nr_pages);
	if (start >= vme->nr_pages)
		return 0;

	for (idx = start; idx < vme->nr_pages && idx - start < VME_PAGES_PER_REC &&
	     test_bit(idx, map); idx++) {
		vme_mem_read_locked(vme, (u64)idx * VME_PAGE_SIZE, buf + len,
				    VME_PAGE_SIZE);
		if (test_bit(idx, vme->present)) {
			crc = crc32c(0, buf + len, VME_PAGE_SIZE);
			vme_digest_page_known_locked(vme, idx, crc);
		} else {
			crc = 0;	/* zeros, and never stale */
		}
		page_crcs[(idx - start)] = crc;
		clear_bit(idx, map);
		clear_bit(idx, vme->dirty);
		len += VME_PAGE_SIZE;
	}
	vme_digest_settle_locked(vme, start, idx);
	*offset = (u64)start * VME_PAGE_SIZE;
	return len;
}

/* ---- workload, resources, digest -------------------------------------- */

/* splitmix64: the workload PRNG, its state is migrated. */
static u64 vme_prng_next_locked(struct vme_device *vme)
{
	lockdep_assert_held(&vme->dev_lock);
	return vfio_mig_emu_splitmix64(&vme->prng);
}

/* Dirty doorbell: @steps pages drawn from the PRNG get a fill pattern. */
static int vme_workload_run_locked(struct vme_device *vme, u32 steps)
{
	__le32 *page;
	unsigned long idx;
	unsigned int i;
	u64 z;

	lockdep_assert_held(&vme->dev_lock);
	if (steps > VME_MAX_DIRTY_STEPS)
		return -EINVAL;

	while (steps--) {
		z = vme_prng_next_locked(vme);
		idx = (u32)(z >> 32) % vme->nr_pages;
		page = vme_page_get_locked(vme, idx);
		if (!page)
			return -ENOMEM;
		for (i = 0; i < VME_PAGE_SIZE / sizeof(*page); i++)
			page[i] = cpu_to_le32((u32)z);
		vme_page_dirtied_locked(vme, idx);
		cond_resched();
	}
	return 0;
}

static int vme_res_reserve_locked(struct vme_device *vme, u32 nr)
{
	struct vfio_mig_emu_resource *res;
	u32 cap;

	lockdep_assert_held(&vme->dev_lock);
	if (nr <= vme->res_cap)
		return 0;
	cap = max3(nr, 2 * vme->res_cap, 16U);
	cap = min_t(u32, cap, VME_MAX_RESOURCES);
	res = krealloc_array(vme->res, cap, sizeof(*res), GFP_KERNEL_ACCOUNT);
	if (!res)
		return -ENOMEM;
	vme->res = res;
	vme->res_cap = cap;
	atomic64_set(&vme->kmem[VFIO_MIG_EMU_KMEM_RESOURCES],
		     (s64)cap * sizeof(*res));
	return 0;
}

/* Reconfigure doorbell: append @nr resources drawn from the PRNG. */
static int vme_reconfig_locked(struct vme_device *vme, u32 nr)
{
	struct vfio_mig_emu_resource *res;
	u32 added = nr;
	int ret;
	u64 z;

	lockdep_assert_held(&vme->dev_lock);
	if (nr > VME_MAX_RESOURCES - vme->nr_res)
		return -ENOSPC;
	if (!nr)
		return 0;
	ret = vme_res_reserve_locked(vme, vme->nr_res + nr);
	if (ret)
		return ret;
	while (nr--) {
		z = vme_prng_next_locked(vme);
		res = &vme->res[vme->nr_res];
		res->id = cpu_to_le32(vme->nr_res);
		res->kind = cpu_to_le32((u32)(z >> 32));
		res->cookie = cpu_to_le64(z);
		vme->nr_res++;
	}
	/* New critical data: a v2 precopy session reports REINIT. */
	if (vme->saving_migf) {
		vme->res_changed = true;
		vme_migf_wake(vme->saving_migf);
	}
	vme_event_critical(vme, vme->nr_res, (u64)added *
			   vme_resource_record_bytes(vme->knobs.resource_bytes));
	return 0;
}

/* Stream bytes of one RESOURCE record carrying @resource_bytes context. */
u64 vme_resource_record_bytes(u32 resource_bytes)
{
	return VME_REC_SIZE + VME_RES_SIZE + resource_bytes;
}

/*
 * A resource's context bytes (stream minor 1): the splitmix64 sequence
 * seeded with its cookie, 8 little-endian bytes per draw, truncated.
 */
static u64 vme_ctx_next(u64 *state)
{
	return vfio_mig_emu_splitmix64(state);
}

void vme_resource_context(u64 cookie, u8 *buf, u32 len)
{
	u64 state = cookie;
	__le64 z;
	u32 done;

	for (done = 0; done < len; done += sizeof(z)) {
		z = cpu_to_le64(vme_ctx_next(&state));
		memcpy(buf + done, &z, min_t(u32, sizeof(z), len - done));
	}
}

bool vme_resource_context_ok(u64 cookie, const u8 *buf, u32 len)
{
	u64 state = cookie;
	__le64 z;
	u32 done;

	for (done = 0; done < len; done += sizeof(z)) {
		z = cpu_to_le64(vme_ctx_next(&state));
		if (memcmp(buf + done, &z, min_t(u32, sizeof(z), len - done)))
			return false;
	}
	return true;
}

/*
 * The workload, from the BAR0 doorbells and from netlink WORKLOAD: dirty
 * @count pages or add @count resources.  Like any device change it is
 * refused (EBUSY) where the device must not change.
 */
int vme_workload_locked(struct vme_device *vme, u32 action, u32 count)
{
	lockdep_assert_held(&vme->dev_lock);
	if (!vme_state_writable(vme->mig_state))
		return -EBUSY;
	switch (action) {
	case VFIO_MIG_EMU_WORKLOAD_DIRTY:
		return vme_workload_run_locked(vme, count);
	case VFIO_MIG_EMU_WORKLOAD_RECONFIG:
		return vme_reconfig_locked(vme, count);
	}
	return -EINVAL;
}

/* ---- background dirtying (DIRTY_RATE knob) ---------------------------- */

#define VME_DIRTY_TICK_NS	(10 * NSEC_PER_MSEC)

static bool vme_dirty_state(enum vfio_device_mig_state state)
{
	return state == VFIO_DEVICE_STATE_RUNNING ||
	       state == VFIO_DEVICE_STATE_PRE_COPY;
}

/*
 * Start or stop the background workload after the state, the open state
 * or the rate changed.  Stopping is lazy (the work also checks under
 * dev_lock); close and release cancel it synchronously.
 */
void vme_dirty_work_update_locked(struct vme_device *vme)
{
	lockdep_assert_held(&vme->state_mutex);
	if (vme->opened && vme->knobs.dirty_rate &&
	    vme_dirty_state(vme->mig_state))
		queue_delayed_work(system_wq, &vme->dirty_work,
				   nsecs_to_jiffies(VME_DIRTY_TICK_NS));
	else
		cancel_delayed_work(&vme->dirty_work);
}

void vme_dirty_work_fn(struct work_struct *work)
{
	struct vme_device *vme = container_of(to_delayed_work(work),
					      struct vme_device, dirty_work);
	u64 now = ktime_get_ns(), elapsed, acc, steps;
	bool again;
	u32 rate;

	/* After a pause, count one tick rather than the whole gap. */
	elapsed = now - vme->dirty_last_ns;
	if (!vme->dirty_last_ns || elapsed > 2 * VME_DIRTY_TICK_NS)
		elapsed = VME_DIRTY_TICK_NS;
	vme->dirty_last_ns = now;

	mutex_lock(&vme->dev_lock);
	rate = vme->knobs.dirty_rate;
	again = rate && vme_dirty_state(vme->mig_state);
	if (again) {
		acc = vme->dirty_carry + (u64)rate * elapsed;
		steps = div64_u64_rem(acc, NSEC_PER_SEC, &vme->dirty_carry);
		/* Errors (no memory) just skip a tick. */
		vme_workload_run_locked(vme, min_t(u64, steps,
						   VME_MAX_DIRTY_STEPS));
	}
	mutex_unlock(&vme->dev_lock);
	if (again && READ_ONCE(vme->opened))
		queue_delayed_work(system_wq, &vme->dirty_work,
				   nsecs_to_jiffies(VME_DIRTY_TICK_NS));
}

/*
 * MEM_SIZE knob: the device is not open (no session, no fd), state_mutex
 * held.  The memory is freed and the device reset with the new size.
 */
int vme_device_resize_locked(struct vme_device *vme, u64 mem_size)
{
	unsigned long nr_pages = mem_size / VME_PAGE_SIZE;
	struct vme_digest_cache digest;
	unsigned long *present, *dirty;

	lockdep_assert_held(&vme->state_mutex);
	present = bitmap_zalloc(nr_pages, GFP_KERNEL_ACCOUNT);
	dirty = bitmap_zalloc(nr_pages, GFP_KERNEL_ACCOUNT);
	if (!present || !dirty || vme_digest_alloc(&digest, nr_pages)) {
		bitmap_free(present);
		bitmap_free(dirty);
		return -ENOMEM;
	}

	mutex_lock(&vme->dev_lock);
	vme_free_pages_locked(vme);
	swap(vme->present, present);
	swap(vme->dirty, dirty);
	swap(vme->digest, digest);
	vme_kmem(vme, VFIO_MIG_EMU_KMEM_BITMAPS,
		 2 * (vme_bitmap_bytes(nr_pages) -
		      vme_bitmap_bytes(vme->nr_pages)));
	vme_kmem(vme, VFIO_MIG_EMU_KMEM_DIGEST,
		 vme_digest_idle_bytes(nr_pages) -
		 vme_digest_idle_bytes(vme->nr_pages));
	vme->mem_size = mem_size;
	vme->nr_pages = nr_pages;
	vme->bar2_size = roundup_pow_of_two(mem_size);
	vme_config_wmask_init(vme);
	vme_device_reset_locked(vme);
	mutex_unlock(&vme->dev_lock);

	bitmap_free(present);
	bitmap_free(dirty);
	vme_digest_free(&digest);
	return 0;
}

/*
 * The uAPI's digest: crc32c from ~0 over config, scratch, prng, resources
 * and then all memory.  The memory part comes from the cache: the CRC so
 * far, shifted over mem_size bytes, combined with the memory's own CRC.
 */
u32 vme_digest_locked(struct vme_device *vme)
{
	__le32 scratch[VFIO_MIG_EMU_NR_SCRATCH];
	__le64 prng = cpu_to_le64(vme->prng);
	u32 crc;
	int i;

	lockdep_assert_held(&vme->dev_lock);
	for (i = 0; i < VFIO_MIG_EMU_NR_SCRATCH; i++)
		scratch[i] = cpu_to_le32(vme->scratch[i]);

	crc = vme_crc(vme->config, VME_CONFIG_SIZE);
	crc = crc32c(crc, scratch, sizeof(scratch));
	crc = crc32c(crc, &prng, sizeof(prng));
	if (vme->nr_res)
		crc = crc32c(crc, vme->res, vme->nr_res * VME_RES_SIZE);
	return vme_crc_mul(crc, vme->digest.mem_factor) ^
	       vme_digest_mem_locked(vme);
}

/* ---- migration snapshot and load -------------------------------------- */

void vme_save_regs_locked(struct vme_device *vme,
			  struct vfio_mig_emu_regs *regs)
{
	int i;

	lockdep_assert_held(&vme->dev_lock);
	memset(regs, 0, sizeof(*regs));
	for (i = 0; i < VFIO_MIG_EMU_NR_SCRATCH; i++)
		regs->scratch[i] = cpu_to_le32(vme->scratch[i]);
	regs->workload_prng = cpu_to_le64(vme->prng);
	regs->nr_resources = cpu_to_le32(vme->nr_res);
}

int vme_load_config_locked(struct vme_device *vme, const void *cfg,
			   const char **why)
{
	u8 def[VME_CONFIG_SIZE];

	lockdep_assert_held(&vme->dev_lock);
	vme_config_defaults(vme, def);
	/* Identity (IDs, class, header type) must be this device's. */
	if (memcmp(cfg, def, PCI_COMMAND) ||
	    memcmp(cfg + PCI_CLASS_REVISION, def + PCI_CLASS_REVISION,
		   PCI_CACHE_LINE_SIZE - PCI_CLASS_REVISION) ||
	    ((const u8 *)cfg)[PCI_HEADER_TYPE] != def[PCI_HEADER_TYPE]) {
		*why = "CONFIG record of another device";
		return -EINVAL;
	}
	memcpy(vme->config, cfg, VME_CONFIG_SIZE);
	return 0;
}

int vme_load_regs_locked(struct vme_device *vme,
			 const struct vfio_mig_emu_regs *regs,
			 const char **why)
{
	int i;

	lockdep_assert_held(&vme->dev_lock);
	if (regs->reserved) {
		*why = "non-zero reserved field in REGS record";
		return -EINVAL;
	}
	if (le32_to_cpu(regs->nr_resources) != vme->nr_res) {
		*why = "REGS nr_resources does not match RESOURCE records";
		return -EINVAL;
	}
	for (i = 0; i < VFIO_MIG_EMU_NR_SCRATCH; i++)
		vme->scratch[i] = le32_to_cpu(regs->scratch[i]);
	vme->prng = le64_to_cpu(regs->workload_prng);
	return 0;
}

/* @page_crcs: each page's CRC from 0, from vme_record_check_crc(). */
int vme_load_mem_locked(struct vme_device *vme, u64 offset, const void *data,
			u32 len, const u32 *page_crcs, const char **why)
{
	u32 done;
	int ret;

	lockdep_assert_held(&vme->dev_lock);
	for (done = 0; done < len; done += VME_PAGE_SIZE) {
		ret = vme_mem_write_locked(vme, offset + done, data + done,
					   VME_PAGE_SIZE);
		if (ret) {
			*why = "out of memory loading MEM record";
			return ret;
		}
		vme_digest_page_known_locked(vme,
					     (offset + done) / VME_PAGE_SIZE,
					     page_crcs[done / VME_PAGE_SIZE]);
	}
	vme_digest_settle_locked(vme, offset / VME_PAGE_SIZE,
				 (offset + len) / VME_PAGE_SIZE);
	return 0;
}

int vme_load_resource_locked(struct vme_device *vme,
			     const struct vfio_mig_emu_resource *res,
			     const char **why)
{
	u32 id = le32_to_cpu(res->id);
	int ret;

	lockdep_assert_held(&vme->dev_lock);
	/* Later records override earlier ones; new ids come in order. */
	if (id > vme->nr_res || id >= VME_MAX_RESOURCES) {
		*why = "RESOURCE record id out of order";
		return -EINVAL;
	}
	if (id == vme->nr_res) {
		ret = vme_res_reserve_locked(vme, id + 1);
		if (ret) {
			*why = "out of memory loading RESOURCE record";
			return ret;
		}
		vme->nr_res++;
	}
	vme->res[id] = *res;
	return 0;
}

/* ---- region access ---------------------------------------------------- */

static u32 vme_reg_read_locked(struct vme_device *vme, u32 off)
{
	lockdep_assert_held(&vme->dev_lock);
	switch (off) {
	case VFIO_MIG_EMU_REG_MAGIC:
		return VFIO_MIG_EMU_MAGIC;
	case VFIO_MIG_EMU_REG_VERSION:
		return VFIO_MIG_EMU_REG_LAYOUT_VERSION;
	case VFIO_MIG_EMU_REG_PROFILE:
		return vme->profile;
	case VFIO_MIG_EMU_REG_STATE:
		return vme->mig_state;
	case VFIO_MIG_EMU_REG_MEM_SIZE_LO:
		return lower_32_bits(vme->mem_size);
	case VFIO_MIG_EMU_REG_MEM_SIZE_HI:
		return upper_32_bits(vme->mem_size);
	case VFIO_MIG_EMU_REG_DIGEST:
		return vme_digest_locked(vme);
	case VFIO_MIG_EMU_REG_NR_RESOURCES:
		return vme->nr_res;
	}
	if (off >= VFIO_MIG_EMU_REG_SCRATCH &&
	    off < VFIO_MIG_EMU_REG_SCRATCH + 4 * VFIO_MIG_EMU_NR_SCRATCH)
		return vme->scratch[(off - VFIO_MIG_EMU_REG_SCRATCH) / 4];
	return 0;	/* doorbells and unimplemented offsets read as 0 */
}

static int vme_reg_write_locked(struct vme_device *vme, u32 off, u32 val)
{
	bool scratch = off >= VFIO_MIG_EMU_REG_SCRATCH &&
		off < VFIO_MIG_EMU_REG_SCRATCH + 4 * VFIO_MIG_EMU_NR_SCRATCH;

	lockdep_assert_held(&vme->dev_lock);
	if (!scratch && off != VFIO_MIG_EMU_REG_DIRTY_DOORBELL &&
	    off != VFIO_MIG_EMU_REG_RECONFIG_DOORBELL)
		return -EINVAL;
	if (!vme_state_writable(vme->mig_state))
		return -EBUSY;

	if (scratch) {
		vme->scratch[(off - VFIO_MIG_EMU_REG_SCRATCH) / 4] = val;
		return 0;
	}
	if (off == VFIO_MIG_EMU_REG_DIRTY_DOORBELL)
		return vme_workload_locked(vme, VFIO_MIG_EMU_WORKLOAD_DIRTY, val);
	return vme_workload_locked(vme, VFIO_MIG_EMU_WORKLOAD_RECONFIG, val);
}

static ssize_t vme_config_rw(struct vme_device *vme, char __user *ubuf,
			     size_t count, u64 off, bool write)
{
	u8 buf[VME_CONFIG_SIZE];
	size_t i;

	if (off >= VME_CONFIG_SIZE || count > VME_CONFIG_SIZE - off)
		return -EINVAL;

	if (!write) {
		mutex_lock(&vme->dev_lock);
		memcpy(buf, vme->config + off, count);
		mutex_unlock(&vme->dev_lock);
		return copy_to_user(ubuf, buf, count) ? -EFAULT : count;
	}

	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	/* Config space writes are accepted in every state. */
	mutex_lock(&vme->dev_lock);
	for (i = 0; i < count; i++) {
		u8 m = vme->cfg_wmask[off + i];

		vme->config[off + i] = (vme->config[off + i] & ~m) |
				       (buf[i] & m);
	}
	mutex_unlock(&vme->dev_lock);
	return count;
}

static ssize_t vme_bar0_rw(struct vme_device *vme, char __user *ubuf,
			   size_t count, u64 off, bool write)
{
	__le32 val;
	int ret;

	if (count != 4 || off % 4 || off >= VFIO_MIG_EMU_BAR0_SIZE)
		return -EINVAL;

	if (!write) {
		mutex_lock(&vme->dev_lock);
		val = cpu_to_le32(vme_reg_read_locked(vme, off));
		mutex_unlock(&vme->dev_lock);
		return copy_to_user(ubuf, &val, 4) ? -EFAULT : 4;
	}

	if (copy_from_user(&val, ubuf, 4))
		return -EFAULT;
	mutex_lock(&vme->dev_lock);
	ret = vme_reg_write_locked(vme, off, le32_to_cpu(val));
	mutex_unlock(&vme->dev_lock);
	return ret ?: 4;
}

/*
 * BAR2 is bar2_size long (a power of two, as BAR sizing needs); the device
 * memory fills its first mem_size bytes.  The tail past it is unbacked BAR
 * space: it reads zero and drops writes, and is never part of the digest
 * or the migration stream.  Writes are refused (EBUSY) in the states where
 * the device must not change, tail or not.  mem_size is a multiple of the
 * page size, so a chunk lies wholly in the memory or in the tail.
 */
static ssize_t vme_bar2_rw(struct vme_device *vme, char __user *ubuf,
			   size_t count, u64 off, bool write)
{
	size_t done = 0, chunk;
	ssize_t ret = 0;
	void *buf;
	bool tail;

	if (off >= vme->bar2_size || count > vme->bar2_size - off)
		return -EINVAL;

	buf = kmalloc(VME_PAGE_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	while (done < count) {
		chunk = min_t(size_t, count - done,
			      VME_PAGE_SIZE - (off + done) % VME_PAGE_SIZE);
		tail = off + done >= vme->mem_size;
		if (write) {
			if (copy_from_user(buf, ubuf + done, chunk)) {
				ret = -EFAULT;
				break;
			}
			mutex_lock(&vme->dev_lock);
			if (!vme_state_writable(vme->mig_state))
				ret = -EBUSY;
			else if (!tail)
				ret = vme_mem_write_locked(vme, off + done, buf,
							   chunk);
			mutex_unlock(&vme->dev_lock);
			if (ret)
				break;
		} else if (tail) {
			if (clear_user(ubuf + done, chunk)) {
				ret = -EFAULT;
				break;
			}
		} else {
			mutex_lock(&vme->dev_lock);
			vme_mem_read_locked(vme, off + done, buf, chunk);
			mutex_unlock(&vme->dev_lock);
			if (copy_to_user(ubuf + done, buf, chunk)) {
				ret = -EFAULT;
				break;
			}
		}
		done += chunk;
	}
	kfree(buf);
	return done ? done : ret;
}

static ssize_t vme_region_rw(struct vme_device *vme, char __user *ubuf,
			     size_t count, loff_t pos, bool write)
{
	unsigned int index = (u64)pos >> VME_OFFSET_SHIFT;
	u64 off = pos & VME_OFFSET_MASK;

	if (pos < 0)
		return -EINVAL;
	if (!count)
		return 0;

	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		return vme_config_rw(vme, ubuf, count, off, write);
	case VFIO_PCI_BAR0_REGION_INDEX:
		return vme_bar0_rw(vme, ubuf, count, off, write);
	case VFIO_PCI_BAR2_REGION_INDEX:
		return vme_bar2_rw(vme, ubuf, count, off, write);
	default:
		return -EINVAL;
	}
}

ssize_t vme_region_read(struct vme_device *vme, char __user *buf,
			size_t count, loff_t pos)
{
	return vme_region_rw(vme, buf, count, pos, false);
}

ssize_t vme_region_write(struct vme_device *vme, const char __user *buf,
			 size_t count, loff_t pos)
{
	return vme_region_rw(vme, (char __user *)buf, count, pos, true);
}
