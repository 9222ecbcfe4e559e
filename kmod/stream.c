// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_mig_emu: the migration stream codec (version 1.0, see the uAPI
 * header).  Pure functions: no locks, no device state.  Checks report a
 * short reason through @why for the resuming side's warning.
 */
#include <linux/crc32c.h>
#include <linux/string.h>

#include "vme.h"

/* crc32c with seed ~0 and no final inversion, as the uAPI defines it. */
u32 vme_crc(const void *data, size_t len)
{
	return crc32c(~0U, data, len);
}

/*
 * CRC algebra.  crc32c() here has no pre- or post-inversion, so it is
 * linear: crc(s, A || B) = crc(s, A) * x^(8|B|) ^ crc(0, B), products
 * taken modulo the crc32c polynomial in its reflected form (bit 31 is
 * x^0).  That lets the digest and the MEM record CRCs be assembled from
 * CRCs of pages computed once, instead of reading the bytes again.
 */
#define VME_CRC32C_POLY		0x82f63b78U

/*
 * Multiplying by a constant is linear in the other operand: four tables of
 * 256 products, one per byte of it, make a product four lookups instead
 * of 32 shift-and-xor steps (the digest combines 16 page CRCs a chunk).
 */
struct vme_crc_mul_table {
	u32 t[4][256];
};

static struct vme_crc_mul_table vme_crc_page_table __ro_after_init;
static struct vme_crc_mul_table vme_crc_chunk_table __ro_after_init;

/* @a * @b modulo the polynomial; quick when @a is 0 (a CRC of zeros). */
u32 vme_crc_mul(u32 a, u32 b)
{
	u32 p = 0;

	while (a) {
		if (a & BIT(31))
			p ^= b;
		a <<= 1;
		b = b & 1 ? (b >> 1) ^ VME_CRC32C_POLY : b >> 1;
	}
	return p;
}

/* x^(8 @bytes): multiplying a CRC by it runs the CRC over @bytes zeros. */
u32 vme_crc_zeros_factor(u64 bytes)
{
	u32 factor = BIT(31), square = BIT(31 - 8);	/* x^0, x^8 */

	for (; bytes; bytes >>= 1) {
		if (bytes & 1)
			factor = vme_crc_mul(factor, square);
		square = vme_crc_mul(square, square);
	}
	return factor;
}

static void __init vme_crc_mul_table_init(struct vme_crc_mul_table *tbl,
					  u32 factor)
{
	unsigned int k, v;

	for (k = 0; k < 4; k++)
		for (v = 0; v < 256; v++)
			tbl->t[k][v] = vme_crc_mul(v << (8 * k), factor);
}

static u32 vme_crc_mul_by(const struct vme_crc_mul_table *tbl, u32 a)
{
	return tbl->t[0][a & 0xff] ^ tbl->t[1][(a >> 8) & 0xff] ^
	       tbl->t[2][(a >> 16) & 0xff] ^ tbl->t[3][a >> 24];
}

void __init vme_crc_init(void)
{
	vme_crc_mul_table_init(&vme_crc_page_table,
			       vme_crc_zeros_factor(VME_PAGE_SIZE));
	vme_crc_mul_table_init(&vme_crc_chunk_table,
			       vme_crc_zeros_factor(VME_CHUNK_PAGES *
						    VME_PAGE_SIZE));
}

/* A CRC of page CRCs: @crc, then @nr pages whose crc(0, page) is given. */
u32 vme_crc_extend_pages(u32 crc, const u32 *page_crcs, unsigned int nr)
{
	while (nr--)
		crc = vme_crc_mul_by(&vme_crc_page_table, crc) ^ *page_crcs++;
	return crc;
}

/* The same for whole chunks of VME_CHUNK_PAGES pages. */
u32 vme_crc_extend_chunks(u32 crc, const u32 *chunk_crcs, unsigned long nr)
{
	while (nr--)
		crc = vme_crc_mul_by(&vme_crc_chunk_table, crc) ^ *chunk_crcs++;
	return crc;
}

void vme_stream_header_encode(struct vfio_mig_emu_stream_header *hdr,
			      u32 profile, u64 mem_size)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = cpu_to_le32(VFIO_MIG_EMU_STREAM_MAGIC);
	hdr->version_major = cpu_to_le16(VFIO_MIG_EMU_STREAM_VERSION_MAJOR);
	hdr->version_minor = cpu_to_le16(VFIO_MIG_EMU_STREAM_VERSION_MINOR);
	hdr->profile = cpu_to_le32(profile);
	hdr->mem_size = cpu_to_le64(mem_size);
	hdr->config_size = cpu_to_le32(VME_CONFIG_SIZE);
	hdr->page_size = cpu_to_le32(VME_PAGE_SIZE);
	hdr->crc = cpu_to_le32(vme_crc(hdr, sizeof(*hdr)));
}

int vme_stream_header_check(const struct vfio_mig_emu_stream_header *hdr,
			    u32 profile, u64 mem_size, const char **why)
{
	struct vfio_mig_emu_stream_header tmp = *hdr;

	tmp.crc = 0;
	if (le32_to_cpu(hdr->magic) != VFIO_MIG_EMU_STREAM_MAGIC)
		*why = "bad stream magic";
	else if (le32_to_cpu(hdr->crc) != vme_crc(&tmp, sizeof(tmp)))
		*why = "stream header crc mismatch";
	else if (le16_to_cpu(hdr->version_major) !=
		 VFIO_MIG_EMU_STREAM_VERSION_MAJOR)
		*why = "unsupported stream major version";
	else if (hdr->flags || hdr->reserved)
		*why = "non-zero must-be-zero field in stream header";
	else if (le32_to_cpu(hdr->profile) != profile)
		*why = "stream is for another profile";
	else if (le64_to_cpu(hdr->mem_size) != mem_size)
		*why = "stream is for another device memory size";
	else if (le32_to_cpu(hdr->config_size) != VME_CONFIG_SIZE)
		*why = "bad config size in stream header";
	else if (le32_to_cpu(hdr->page_size) != VME_PAGE_SIZE)
		*why = "bad page size in stream header";
	else
		return 0;
	return -EINVAL;
}

/*
 * Fill @rec for @payload (@length bytes, may be NULL when zero).  With
 * @page_crcs (a MEM record) the payload's CRC comes from the CRCs of its
 * pages, and the payload is not read.
 */
void vme_record_encode(struct vfio_mig_emu_record *rec, u16 type, u32 seq,
		       u32 length, u64 arg, const void *payload,
		       const u32 *page_crcs)
{
	u32 crc;

	memset(rec, 0, sizeof(*rec));
	rec->magic = cpu_to_le32(VFIO_MIG_EMU_RECORD_MAGIC);
	rec->type = cpu_to_le16(type);
	rec->seq = cpu_to_le32(seq);
	rec->length = cpu_to_le32(length);
	rec->arg = cpu_to_le64(arg);
	crc = vme_crc(rec, sizeof(*rec));
	if (page_crcs)
		crc = vme_crc_extend_pages(crc, page_crcs,
					   length / VME_PAGE_SIZE);
	else if (length)
		crc = crc32c(crc, payload, length);
	rec->crc = cpu_to_le32(crc);
}

static int vme_record_check_mem(u64 arg, u32 length, u64 mem_size,
				const char **why)
{
	if (!length || length % VME_PAGE_SIZE || length > VME_MAX_PAYLOAD) {
		*why = "bad MEM record length";
		return -EINVAL;
	}
	if (arg % VME_PAGE_SIZE || arg >= mem_size ||
	    length > mem_size - arg) {
		*why = "MEM record offset out of range";
		return -EINVAL;
	}
	return 0;
}

/*
 * Validate a record header before its payload is read: everything except
 * the crc, which needs the payload (vme_record_check_crc()).
 */
int vme_record_check(const struct vfio_mig_emu_record *rec, u32 seq,
		     u64 mem_size, const char **why)
{
	u32 length = le32_to_cpu(rec->length);
	u64 arg = le64_to_cpu(rec->arg);
	u32 want;

	if (le32_to_cpu(rec->magic) != VFIO_MIG_EMU_RECORD_MAGIC) {
		*why = "bad record magic";
		return -EINVAL;
	}
	if (rec->flags || rec->reserved) {
		*why = "non-zero must-be-zero field in record";
		return -EINVAL;
	}
	if (le32_to_cpu(rec->seq) != seq) {
		*why = "record sequence gap or reorder";
		return -EINVAL;
	}

	switch (le16_to_cpu(rec->type)) {
	case VFIO_MIG_EMU_REC_CONFIG:
		want = VME_CONFIG_SIZE;
		break;
	case VFIO_MIG_EMU_REC_REGS:
		want = VME_REGS_SIZE;
		break;
	case VFIO_MIG_EMU_REC_RESOURCE:
		/* Minor 1: context bytes may follow the resource. */
		if (length < VME_RES_SIZE || length > VME_MAX_PAYLOAD) {
			*why = "bad RESOURCE record length";
			return -EINVAL;
		}
		want = length;
		break;
	case VFIO_MIG_EMU_REC_END:
		if (length) {
			*why = "END record with payload";
			return -EINVAL;
		}
		if (arg >> 32) {
			*why = "END record digest out of range";
			return -EINVAL;
		}
		return 0;
	case VFIO_MIG_EMU_REC_MEM:
		return vme_record_check_mem(arg, length, mem_size, why);
	default:
		*why = "unknown record type";
		return -EINVAL;
	}

	if (length != want) {
		*why = "bad record length";
		return -EINVAL;
	}
	if (arg) {
		*why = "non-zero arg in record that has none";
		return -EINVAL;
	}
	return 0;
}

/*
 * Check a record's crc once its payload is in.  For a MEM record (checked
 * by vme_record_check() first) the CRC of each page goes to @page_crcs,
 * VME_PAGES_PER_REC entries, for the digest: the payload is read once.
 */
int vme_record_check_crc(const struct vfio_mig_emu_record *rec,
			 const void *payload, u32 *page_crcs, const char **why)
{
	struct vfio_mig_emu_record tmp = *rec;
	u32 length = le32_to_cpu(rec->length);
	unsigned int i, nr = length / VME_PAGE_SIZE;
	u32 crc;

	tmp.crc = 0;
	crc = vme_crc(&tmp, sizeof(tmp));
	if (le16_to_cpu(rec->type) == VFIO_MIG_EMU_REC_MEM) {
		for (i = 0; i < nr; i++)
			page_crcs[i] = crc32c(0, payload + i * VME_PAGE_SIZE,
					      VME_PAGE_SIZE);
		crc = vme_crc_extend_pages(crc, page_crcs, nr);
	} else if (length) {
		crc = crc32c(crc, payload, length);
	}
	if (crc != le32_to_cpu(rec->crc)) {
		*why = "record crc mismatch";
		return -EINVAL;
	}
	return 0;
}
