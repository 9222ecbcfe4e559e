// Pure codec of the vfio_mig_emu migration stream v1.0 (see
// kmod/include/uapi/vfio_mig_emu.h): crc32c, encoder, parser/validator,
// and a model of the loaded device state to compute the digest a stream
// should produce.  No I/O, no kernel needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vfiomig {

using Bytes = std::vector<std::uint8_t>;
using ByteSpan = std::span<const std::uint8_t>;

/// crc32c (Castagnoli, reflected polynomial 0x82F63B78) continuing from
/// `crc` with no pre- or post-inversion, like the kernel's crc32c(crc, p, n).
std::uint32_t crc32c(std::uint32_t crc, ByteSpan data);

/// The seed used for the state digest and for stream checksums (~0; the
/// result is not inverted).
inline constexpr std::uint32_t kCrcSeed = ~std::uint32_t{0};

inline constexpr std::size_t kStreamHeaderSize = 40;
inline constexpr std::size_t kRecordHeaderSize = 32;
inline constexpr std::size_t kRegsSize = 272;
inline constexpr std::size_t kResourceSize = 16;

enum class RecordType : std::uint16_t {
	Config = 1,
	Regs = 2,
	Mem = 3,
	Resource = 4,
	End = 5,
};
std::string record_type_name(std::uint16_t type);

/// struct vfio_mig_emu_stream_header, host byte order.
struct StreamHeader {
	std::uint32_t magic = 0;
	std::uint16_t version_major = 0;
	std::uint16_t version_minor = 0;
	std::uint32_t profile = 0;
	std::uint32_t flags = 0;
	std::uint64_t mem_size = 0;
	std::uint32_t config_size = 0;
	std::uint32_t page_size = 0;
	std::uint32_t reserved = 0;
	std::uint32_t crc = 0;

	/// A correct v1.0 header for `profile` and `mem_size` (crc filled in).
	static StreamHeader make(std::uint32_t profile, std::uint64_t mem_size);
	/// Little-endian encoding, crc as stored.
	Bytes encode() const;
	/// crc32c of the encoding with crc = 0.
	std::uint32_t compute_crc() const;
};

/// struct vfio_mig_emu_record plus its payload, host byte order.
struct Record {
	std::uint32_t magic = 0;
	std::uint16_t type = 0;
	std::uint16_t flags = 0;
	std::uint32_t seq = 0;
	std::uint32_t length = 0;
	std::uint64_t arg = 0;
	std::uint32_t reserved = 0;
	std::uint32_t crc = 0;
	Bytes payload;
	/// Byte offset of the record header in the parsed stream.
	std::size_t offset = 0;

	/// A correct record (length and crc filled in from the payload).
	static Record make(RecordType type, std::uint32_t seq, std::uint64_t arg, Bytes payload);
	/// Header + payload, little-endian, crc and length as stored.
	Bytes encode() const;
	/// crc32c of the header with crc = 0, continued over the payload.
	std::uint32_t compute_crc() const;
	/// Recomputes length from payload and crc.
	void seal();
};

/// Builds a stream record by record, numbering seq automatically.
class StreamBuilder {
public:
	StreamBuilder(std::uint32_t profile, std::uint64_t mem_size);
	StreamBuilder &config(Bytes config_space);
	StreamBuilder &regs(Bytes regs);
	StreamBuilder &mem(std::uint64_t offset, Bytes pages);
	/// A RESOURCE record; `context` bytes follow the struct (minor 1).
	StreamBuilder &resource(std::uint32_t id, std::uint32_t kind, std::uint64_t cookie, Bytes context = {});
	StreamBuilder &end(std::uint32_t digest);
	/// The stream so far.
	Bytes bytes() const;

	StreamHeader header;
	std::vector<Record> records;
};

/// Serialises a header and records as they are (no re-sealing).
Bytes encode_stream(const StreamHeader &header, const std::vector<Record> &records);

enum class StreamError {
	None,
	Truncated,        ///< ended inside the header or a record
	NoEnd,            ///< complete records but no END record
	BadMagic,         ///< stream header magic
	BadVersion,       ///< unsupported major version
	BadHeaderCrc,
	BadHeaderField,   ///< flags/reserved non-zero, config_size/page_size wrong
	ProfileMismatch,  ///< header profile differs from the expectation
	MemSizeMismatch,  ///< header mem_size differs from the expectation
	BadRecordMagic,
	BadRecordCrc,
	BadRecordField,   ///< must-be-zero record fields
	SeqGap,           ///< seq not consecutive from 0 (lost or reordered)
	UnknownType,
	BadLength,        ///< length out of range for the type
	BadOffset,        ///< MEM arg unaligned or out of range
	DataAfterEnd,
};
std::string stream_error_name(StreamError e);

/// What the receiving device expects (checked when set).
struct StreamExpect {
	std::optional<std::uint32_t> profile;
	std::optional<std::uint64_t> mem_size;
};

/// Parse outcome: the header and every record up to the first error.
struct ParsedStream {
	std::optional<StreamHeader> header;
	std::vector<Record> records;
	StreamError error = StreamError::None;
	std::size_t error_offset = 0;
	std::string detail;
	bool ok() const { return error == StreamError::None; }
	/// "BadRecordCrc at 1234: ..." or "ok: N records".
	std::string describe() const;
};

/// Walks a complete stream and validates it as the resuming device must.
/// With `allow_partial`, a stream that stops cleanly between records (no
/// END yet, as a PRE_COPY capture does) is not an error.
ParsedStream parse_stream(ByteSpan data, const StreamExpect &expect = {},
			  bool allow_partial = false);

/// The migrated device state rebuilt from records (later ones override),
/// starting from all zero, as the resuming device loads it.
struct DeviceModel {
	Bytes config;                   ///< config space
	std::vector<std::uint32_t> scratch;
	std::uint64_t workload_prng = 0;
	std::uint32_t nr_resources = 0; ///< from REGS
	struct Resource {
		std::uint32_t id, kind;
		std::uint64_t cookie;
	};
	std::vector<Resource> resources; ///< by id
	Bytes memory;

	/// Applies records of a parsed stream; returns nullopt (with a reason)
	/// for a record it cannot apply or, when REGS was seen, a resource
	/// count that differs from REGS.nr_resources.
	static std::optional<DeviceModel> load(const ParsedStream &stream, std::string *why = nullptr);
	/// The state digest as defined in the uAPI header.
	std::uint32_t digest() const;
};

/// Digest the END record of a valid stream claims (nullopt without END).
std::optional<std::uint32_t> end_digest(const ParsedStream &stream);

/// Human-readable dump: one line per record.
std::string dump_stream(const ParsedStream &stream);

} // namespace vfiomig
