#include "vfiomig/stream.hpp"

#include <array>
#include <cstdio>

#include "vfio_mig_emu.h"

namespace vfiomig {

static_assert(sizeof(struct vfio_mig_emu_stream_header) == kStreamHeaderSize);
static_assert(sizeof(struct vfio_mig_emu_record) == kRecordHeaderSize);
static_assert(sizeof(struct vfio_mig_emu_regs) == kRegsSize);
static_assert(sizeof(struct vfio_mig_emu_resource) == kResourceSize);

namespace {

constexpr std::array<std::uint32_t, 256> make_crc_table()
{
	std::array<std::uint32_t, 256> t{};
	for (std::uint32_t i = 0; i < 256; i++) {
		std::uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		t[i] = c;
	}
	return t;
}
constexpr auto kCrcTable = make_crc_table();

void put16(Bytes &b, std::uint16_t v)
{
	b.push_back(static_cast<std::uint8_t>(v));
	b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put32(Bytes &b, std::uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put64(Bytes &b, std::uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint16_t get16(const std::uint8_t *p)
{
	return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t get32(const std::uint8_t *p)
{
	return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
	       std::uint32_t{p[3]} << 24;
}
std::uint64_t get64(const std::uint8_t *p)
{
	return std::uint64_t{get32(p)} | std::uint64_t{get32(p + 4)} << 32;
}

std::string hex(std::uint64_t v)
{
	char buf[32];
	std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
	return buf;
}

} // namespace

std::uint32_t crc32c(std::uint32_t crc, ByteSpan data)
{
	for (std::uint8_t byte : data)
		crc = kCrcTable[(crc ^ byte) & 0xff] ^ (crc >> 8);
	return crc;
}

std::string record_type_name(std::uint16_t type)
{
	switch (static_cast<RecordType>(type)) {
	case RecordType::Config: return "CONFIG";
	case RecordType::Regs: return "REGS";
	case RecordType::Mem: return "MEM";
	case RecordType::Resource: return "RESOURCE";
	case RecordType::End: return "END";
	}
	return "TYPE(" + std::to_string(type) + ")";
}

// --- header ---------------------------------------------------------------

StreamHeader StreamHeader::make(std::uint32_t profile, std::uint64_t mem_size)
{
	StreamHeader h;
	h.magic = VFIO_MIG_EMU_STREAM_MAGIC;
	h.version_major = VFIO_MIG_EMU_STREAM_VERSION_MAJOR;
	h.version_minor = VFIO_MIG_EMU_STREAM_VERSION_MINOR;
	h.profile = profile;
	h.mem_size = mem_size;
	h.config_size = VFIO_MIG_EMU_CONFIG_SIZE;
	h.page_size = VFIO_MIG_EMU_PAGE_SIZE;
	h.crc = h.compute_crc();
	return h;
}

Bytes StreamHeader::encode() const
{
	Bytes b;
	b.reserve(kStreamHeaderSize);
	put32(b, magic);
	put16(b, version_major);
	put16(b, version_minor);
	put32(b, profile);
	put32(b, flags);
	put64(b, mem_size);
	put32(b, config_size);
	put32(b, page_size);
	put32(b, reserved);
	put32(b, crc);
	return b;
}

std::uint32_t StreamHeader::compute_crc() const
{
	StreamHeader copy = *this;
	copy.crc = 0;
	return crc32c(kCrcSeed, copy.encode());
}

// --- records --------------------------------------------------------------

Record Record::make(RecordType type, std::uint32_t seq, std::uint64_t arg, Bytes payload)
{
	Record r;
	r.magic = VFIO_MIG_EMU_RECORD_MAGIC;
	r.type = static_cast<std::uint16_t>(type);
	r.seq = seq;
	r.arg = arg;
	r.payload = std::move(payload);
	r.seal();
	return r;
}

static Bytes encode_record_header(const Record &r, std::uint32_t crc)
{
	Bytes b;
	b.reserve(kRecordHeaderSize + r.payload.size());
	put32(b, r.magic);
	put16(b, r.type);
	put16(b, r.flags);
	put32(b, r.seq);
	put32(b, r.length);
	put64(b, r.arg);
	put32(b, r.reserved);
	put32(b, crc);
	return b;
}

Bytes Record::encode() const
{
	Bytes b = encode_record_header(*this, crc);
	b.insert(b.end(), payload.begin(), payload.end());
	return b;
}

std::uint32_t Record::compute_crc() const
{
	return crc32c(crc32c(kCrcSeed, encode_record_header(*this, 0)), payload);
}

void Record::seal()
{
	length = static_cast<std::uint32_t>(payload.size());
	crc = compute_crc();
}

StreamBuilder::StreamBuilder(std::uint32_t profile, std::uint64_t mem_size)
	: header(StreamHeader::make(profile, mem_size))
{
}

StreamBuilder &StreamBuilder::config(Bytes config_space)
{
	records.push_back(Record::make(RecordType::Config, static_cast<std::uint32_t>(records.size()), 0,
				       std::move(config_space)));
	return *this;
}

StreamBuilder &StreamBuilder::regs(Bytes regs)
{
	records.push_back(Record::make(RecordType::Regs, static_cast<std::uint32_t>(records.size()), 0,
				       std::move(regs)));
	return *this;
}

StreamBuilder &StreamBuilder::mem(std::uint64_t offset, Bytes pages)
{
	records.push_back(Record::make(RecordType::Mem, static_cast<std::uint32_t>(records.size()), offset,
				       std::move(pages)));
	return *this;
}

StreamBuilder &StreamBuilder::resource(std::uint32_t id, std::uint32_t kind, std::uint64_t cookie, Bytes context)
{
	Bytes p;
	put32(p, id);
	put32(p, kind);
	put64(p, cookie);
	p.insert(p.end(), context.begin(), context.end());
	records.push_back(Record::make(RecordType::Resource, static_cast<std::uint32_t>(records.size()), 0,
				       std::move(p)));
	return *this;
}

StreamBuilder &StreamBuilder::end(std::uint32_t digest)
{
	records.push_back(Record::make(RecordType::End, static_cast<std::uint32_t>(records.size()), digest, {}));
	return *this;
}

Bytes StreamBuilder::bytes() const { return encode_stream(header, records); }

Bytes encode_stream(const StreamHeader &header, const std::vector<Record> &records)
{
	Bytes out = header.encode();
	for (const Record &r : records) {
		Bytes b = r.encode();
		out.insert(out.end(), b.begin(), b.end());
	}
	return out;
}

// --- parser ---------------------------------------------------------------

std::string stream_error_name(StreamError e)
{
	switch (e) {
	case StreamError::None: return "None";
	case StreamError::Truncated: return "Truncated";
	case StreamError::NoEnd: return "NoEnd";
	case StreamError::BadMagic: return "BadMagic";
	case StreamError::BadVersion: return "BadVersion";
	case StreamError::BadHeaderCrc: return "BadHeaderCrc";
	case StreamError::BadHeaderField: return "BadHeaderField";
	case StreamError::ProfileMismatch: return "ProfileMismatch";
	case StreamError::MemSizeMismatch: return "MemSizeMismatch";
	case StreamError::BadRecordMagic: return "BadRecordMagic";
	case StreamError::BadRecordCrc: return "BadRecordCrc";
	case StreamError::BadRecordField: return "BadRecordField";
	case StreamError::SeqGap: return "SeqGap";
	case StreamError::UnknownType: return "UnknownType";
	case StreamError::BadLength: return "BadLength";
	case StreamError::BadOffset: return "BadOffset";
	case StreamError::DataAfterEnd: return "DataAfterEnd";
	}
	return "?";
}

std::string ParsedStream::describe() const
{
	if (ok())
		return "ok: " + std::to_string(records.size()) + " records";
	return stream_error_name(error) + " at " + std::to_string(error_offset) + ": " + detail;
}

ParsedStream parse_stream(ByteSpan data, const StreamExpect &expect, bool allow_partial)
{
	ParsedStream out;
	auto fail = [&](StreamError e, std::size_t at, std::string detail) {
		out.error = e;
		out.error_offset = at;
		out.detail = std::move(detail);
		return out;
	};

	if (data.size() < kStreamHeaderSize) {
		if (allow_partial && data.empty())
			return out;
		return fail(StreamError::Truncated, 0,
			    "stream header needs " + std::to_string(kStreamHeaderSize) + " bytes, have " +
				    std::to_string(data.size()));
	}
	const std::uint8_t *p = data.data();
	StreamHeader h;
	h.magic = get32(p);
	h.version_major = get16(p + 4);
	h.version_minor = get16(p + 6);
	h.profile = get32(p + 8);
	h.flags = get32(p + 12);
	h.mem_size = get64(p + 16);
	h.config_size = get32(p + 24);
	h.page_size = get32(p + 28);
	h.reserved = get32(p + 32);
	h.crc = get32(p + 36);

	if (h.magic != VFIO_MIG_EMU_STREAM_MAGIC)
		return fail(StreamError::BadMagic, 0, "stream magic " + hex(h.magic));
	if (h.crc != h.compute_crc())
		return fail(StreamError::BadHeaderCrc, 36,
			    "header crc " + hex(h.crc) + ", computed " + hex(h.compute_crc()));
	out.header = h;
	if (h.version_major != VFIO_MIG_EMU_STREAM_VERSION_MAJOR)
		return fail(StreamError::BadVersion, 4,
			    "version " + std::to_string(h.version_major) + "." + std::to_string(h.version_minor));
	if (h.flags || h.reserved)
		return fail(StreamError::BadHeaderField, 12, "non-zero flags/reserved");
	if (h.config_size != VFIO_MIG_EMU_CONFIG_SIZE || h.page_size != VFIO_MIG_EMU_PAGE_SIZE)
		return fail(StreamError::BadHeaderField, 24,
			    "config_size " + std::to_string(h.config_size) + " page_size " +
				    std::to_string(h.page_size));
	if (h.profile >= VFIO_MIG_EMU_PROFILE_COUNT || (expect.profile && *expect.profile != h.profile))
		return fail(StreamError::ProfileMismatch, 8, "profile " + std::to_string(h.profile));
	if (h.mem_size == 0 || h.mem_size % VFIO_MIG_EMU_PAGE_SIZE ||
	    (expect.mem_size && *expect.mem_size != h.mem_size))
		return fail(StreamError::MemSizeMismatch, 16, "mem_size " + std::to_string(h.mem_size));

	std::size_t pos = kStreamHeaderSize;
	bool seen_end = false;
	while (pos < data.size()) {
		if (seen_end)
			return fail(StreamError::DataAfterEnd, pos,
				    std::to_string(data.size() - pos) + " bytes after END");
		if (data.size() - pos < kRecordHeaderSize) {
			if (get32(p + pos) != VFIO_MIG_EMU_RECORD_MAGIC && data.size() - pos >= 4)
				return fail(StreamError::BadRecordMagic, pos, "record magic");
			return fail(StreamError::Truncated, pos, "partial record header");
		}
		const std::uint8_t *q = p + pos;
		Record r;
		r.offset = pos;
		r.magic = get32(q);
		r.type = get16(q + 4);
		r.flags = get16(q + 6);
		r.seq = get32(q + 8);
		r.length = get32(q + 12);
		r.arg = get64(q + 16);
		r.reserved = get32(q + 24);
		r.crc = get32(q + 28);
		std::string where = "record " + std::to_string(out.records.size()) + " (" +
				    record_type_name(r.type) + " seq " + std::to_string(r.seq) + ")";
		if (r.magic != VFIO_MIG_EMU_RECORD_MAGIC)
			return fail(StreamError::BadRecordMagic, pos, where + ": magic " + hex(r.magic));
		if (r.length > VFIO_MIG_EMU_MAX_RECORD_PAYLOAD)
			return fail(StreamError::BadLength, pos, where + ": length " + std::to_string(r.length));
		if (data.size() - pos - kRecordHeaderSize < r.length)
			return fail(StreamError::Truncated, pos, where + ": payload cut short");
		r.payload.assign(q + kRecordHeaderSize, q + kRecordHeaderSize + r.length);
		if (r.crc != r.compute_crc())
			return fail(StreamError::BadRecordCrc, pos,
				    where + ": crc " + hex(r.crc) + ", computed " + hex(r.compute_crc()));
		if (r.flags || r.reserved)
			return fail(StreamError::BadRecordField, pos, where + ": non-zero flags/reserved");
		if (r.seq != out.records.size())
			return fail(StreamError::SeqGap, pos,
				    where + ": expected seq " + std::to_string(out.records.size()));
		switch (static_cast<RecordType>(r.type)) {
		case RecordType::Config:
			if (r.length != VFIO_MIG_EMU_CONFIG_SIZE || r.arg)
				return fail(StreamError::BadLength, pos, where + ": bad length/arg");
			break;
		case RecordType::Regs:
			if (r.length != kRegsSize || r.arg)
				return fail(StreamError::BadLength, pos, where + ": bad length/arg");
			if (get32(r.payload.data() + kRegsSize - 4))
				return fail(StreamError::BadRecordField, pos, where + ": regs reserved");
			break;
		case RecordType::Resource:
			// Minor 1: context bytes may follow struct vfio_mig_emu_resource.
			if (r.length < kResourceSize || r.arg)
				return fail(StreamError::BadLength, pos, where + ": bad length/arg");
			break;
		case RecordType::End:
			if (r.length)
				return fail(StreamError::BadLength, pos, where + ": END with payload");
			if (r.arg > 0xffffffffu)
				return fail(StreamError::BadRecordField, pos, where + ": digest > 32 bits");
			seen_end = true;
			break;
		case RecordType::Mem:
			if (r.length == 0 || r.length % VFIO_MIG_EMU_PAGE_SIZE)
				return fail(StreamError::BadLength, pos, where + ": length " + std::to_string(r.length));
			if (r.arg % VFIO_MIG_EMU_PAGE_SIZE || r.arg > h.mem_size || h.mem_size - r.arg < r.length)
				return fail(StreamError::BadOffset, pos, where + ": offset " + hex(r.arg));
			break;
		default:
			return fail(StreamError::UnknownType, pos, where + ": unknown type");
		}
		out.records.push_back(std::move(r));
		pos += kRecordHeaderSize + out.records.back().length;
	}
	if (!seen_end && !allow_partial)
		return fail(StreamError::NoEnd, pos, "no END record");
	return out;
}

// --- model ----------------------------------------------------------------

std::optional<DeviceModel> DeviceModel::load(const ParsedStream &stream, std::string *why)
{
	auto fail = [&](std::string w) -> std::optional<DeviceModel> {
		if (why)
			*why = std::move(w);
		return std::nullopt;
	};
	if (!stream.header)
		return fail("no header");
	DeviceModel m;
	m.config.assign(VFIO_MIG_EMU_CONFIG_SIZE, 0);
	m.scratch.assign(VFIO_MIG_EMU_NR_SCRATCH, 0);
	m.memory.assign(stream.header->mem_size, 0);
	bool have_regs = false;
	for (const Record &r : stream.records) {
		switch (static_cast<RecordType>(r.type)) {
		case RecordType::Config:
			m.config = r.payload;
			break;
		case RecordType::Regs:
			for (std::size_t i = 0; i < VFIO_MIG_EMU_NR_SCRATCH; i++)
				m.scratch[i] = get32(r.payload.data() + 4 * i);
			m.workload_prng = get64(r.payload.data() + 4 * VFIO_MIG_EMU_NR_SCRATCH);
			m.nr_resources = get32(r.payload.data() + 4 * VFIO_MIG_EMU_NR_SCRATCH + 8);
			have_regs = true;
			break;
		case RecordType::Mem:
			std::copy(r.payload.begin(), r.payload.end(),
				  m.memory.begin() + static_cast<std::ptrdiff_t>(r.arg));
			break;
		case RecordType::Resource: {
			// Ids up to the number loaded so far: equal appends, smaller
			// overrides. Context bytes after the struct are not state.
			Resource x{get32(r.payload.data()), get32(r.payload.data() + 4), get64(r.payload.data() + 8)};
			if (x.id > m.resources.size())
				return fail("RESOURCE id " + std::to_string(x.id) + " with only " +
					    std::to_string(m.resources.size()) + " loaded");
			if (x.id == m.resources.size())
				m.resources.push_back(x);
			else
				m.resources[x.id] = x;
			break;
		}
		case RecordType::End:
			break;
		default:
			return fail("unknown record type " + std::to_string(r.type));
		}
	}
	if (have_regs && m.resources.size() != m.nr_resources)
		return fail("REGS says " + std::to_string(m.nr_resources) + " resources, stream has " +
			    std::to_string(m.resources.size()));
	return m;
}

std::uint32_t DeviceModel::digest() const
{
	Bytes b = config;
	for (std::uint32_t s : scratch)
		put32(b, s);
	put64(b, workload_prng);
	for (const Resource &x : resources) {
		put32(b, x.id);
		put32(b, x.kind);
		put64(b, x.cookie);
	}
	std::uint32_t crc = crc32c(kCrcSeed, b);
	return crc32c(crc, memory);
}

std::optional<std::uint32_t> end_digest(const ParsedStream &stream)
{
	if (!stream.records.empty() && stream.records.back().type == static_cast<std::uint16_t>(RecordType::End))
		return static_cast<std::uint32_t>(stream.records.back().arg);
	return std::nullopt;
}

std::string dump_stream(const ParsedStream &s)
{
	std::string out;
	if (s.header) {
		const StreamHeader &h = *s.header;
		out += "header: v" + std::to_string(h.version_major) + "." + std::to_string(h.version_minor) +
		       " profile " + std::to_string(h.profile) + " mem_size " + std::to_string(h.mem_size) + "\n";
	}
	for (const Record &r : s.records) {
		out += "  @" + std::to_string(r.offset) + " seq " + std::to_string(r.seq) + " " +
		       record_type_name(r.type) + " len " + std::to_string(r.length) + " arg " + hex(r.arg) + "\n";
	}
	out += s.describe() + "\n";
	return out;
}

} // namespace vfiomig
