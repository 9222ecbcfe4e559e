// The stream codec round-trips and detects every kind of corruption.
#include <gtest/gtest.h>

#include <algorithm>

#include "vfio_mig_emu.h"
#include "vfiomig/emu.hpp"
#include "vfiomig/stream.hpp"

using namespace vfiomig;

namespace {

constexpr std::uint64_t kMem = 64 * 1024;
constexpr std::uint32_t kProfile = VFIO_MIG_EMU_PROFILE_FULL;

Bytes bytes_of(const char *s) { return Bytes(s, s + std::char_traits<char>::length(s)); }

StreamBuilder sample()
{
	StreamBuilder b(kProfile, kMem);
	Bytes cfg(VFIO_MIG_EMU_CONFIG_SIZE, 0);
	cfg[0] = 0xfe;
	cfg[0x40] = 0x11;
	b.config(cfg);
	b.resource(0, 7, 0x1234);
	b.mem(4096, emu::make_pattern(8192, 1));
	b.mem(0, emu::make_pattern(4096, 2));
	b.config(cfg);
	Bytes regs(kRegsSize, 0);
	regs[0] = 0xaa;
	regs[4 * VFIO_MIG_EMU_NR_SCRATCH] = 0x42; // prng
	regs[4 * VFIO_MIG_EMU_NR_SCRATCH + 8] = 1; // nr_resources
	b.regs(regs);
	auto model = DeviceModel::load(parse_stream(b.bytes(), {}, true));
	b.end(model->digest());
	return b;
}

ParsedStream parse(const Bytes &b) { return parse_stream(b, {kProfile, kMem}); }

} // namespace

TEST(Crc32c, KnownVectors)
{
	// Standard CRC-32C check value: inverted in and out.
	EXPECT_EQ(~crc32c(~0u, bytes_of("123456789")), 0xE3069283u);
	EXPECT_EQ(crc32c(~0u, {}), ~0u);
	// Incremental equals one-shot.
	Bytes all = bytes_of("hello, world");
	std::uint32_t a = crc32c(crc32c(kCrcSeed, ByteSpan(all).first(5)), ByteSpan(all).subspan(5));
	EXPECT_EQ(a, crc32c(kCrcSeed, all));
}

TEST(StreamCodec, LayoutMatchesTheUapiStructs)
{
	StreamHeader h = StreamHeader::make(kProfile, kMem);
	EXPECT_EQ(h.encode().size(), sizeof(struct vfio_mig_emu_stream_header));
	Record r = Record::make(RecordType::End, 0, 5, {});
	EXPECT_EQ(r.encode().size(), sizeof(struct vfio_mig_emu_record));
	Bytes e = h.encode();
	EXPECT_EQ(e[0], 0x4d); // "MESM" little-endian
	EXPECT_EQ(e[3], 0x4d);
}

TEST(StreamCodec, RoundTrip)
{
	StreamBuilder b = sample();
	Bytes bytes = b.bytes();
	ParsedStream p = parse(bytes);
	ASSERT_TRUE(p.ok()) << p.describe();
	ASSERT_EQ(p.records.size(), b.records.size());
	for (std::size_t i = 0; i < p.records.size(); i++) {
		EXPECT_EQ(p.records[i].type, b.records[i].type);
		EXPECT_EQ(p.records[i].seq, i);
		EXPECT_EQ(p.records[i].payload, b.records[i].payload);
		EXPECT_EQ(p.records[i].arg, b.records[i].arg);
	}
	EXPECT_EQ(encode_stream(*p.header, p.records), bytes);
	auto model = DeviceModel::load(p);
	ASSERT_TRUE(model);
	EXPECT_EQ(end_digest(p), model->digest());
	EXPECT_EQ(model->memory[4096], emu::make_pattern(8192, 1)[0]);
	EXPECT_EQ(model->resources.size(), 1u);
}

TEST(StreamCodec, PartialStreamAcceptedOnlyWhenAllowed)
{
	StreamBuilder b(kProfile, kMem);
	b.config(Bytes(VFIO_MIG_EMU_CONFIG_SIZE, 0));
	Bytes bytes = b.bytes();
	EXPECT_TRUE(parse_stream(bytes, {}, true).ok());
	EXPECT_EQ(parse_stream(bytes).error, StreamError::NoEnd);
	EXPECT_TRUE(parse_stream({}, {}, true).ok());
}

TEST(StreamCodec, TruncationDetectedAtEveryCut)
{
	Bytes bytes = sample().bytes();
	ParsedStream full = parse(bytes);
	std::vector<std::size_t> boundaries;
	for (const Record &r : full.records)
		boundaries.push_back(r.offset);
	for (std::size_t cut = 0; cut < bytes.size(); cut += (cut < 200 ? 1 : 97)) {
		Bytes t(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut));
		ParsedStream p = parse(t);
		bool at_boundary = std::count(boundaries.begin(), boundaries.end(), cut) > 0;
		EXPECT_EQ(p.error, at_boundary ? StreamError::NoEnd : StreamError::Truncated) << "cut " << cut;
	}
}

TEST(StreamCodec, FlippedBitsAreDetected)
{
	Bytes bytes = sample().bytes();
	for (std::size_t i = 0; i < bytes.size(); i += 61) {
		Bytes c = bytes;
		c[i] ^= 0x10;
		ParsedStream p = parse(c);
		EXPECT_FALSE(p.ok()) << "flip at " << i;
	}
}

TEST(StreamCodec, BadPayloadCrcDetected)
{
	StreamBuilder b = sample();
	b.records[2].payload[100] ^= 1; // MEM payload, crc not re-sealed
	EXPECT_EQ(parse(b.bytes()).error, StreamError::BadRecordCrc);
}

TEST(StreamCodec, ReorderedAndLostRecordsDetected)
{
	StreamBuilder b = sample();
	std::swap(b.records[2], b.records[3]);
	EXPECT_EQ(parse(b.bytes()).error, StreamError::SeqGap);
	StreamBuilder c = sample();
	c.records.erase(c.records.begin() + 1);
	EXPECT_EQ(parse(c.bytes()).error, StreamError::SeqGap);
}

TEST(StreamCodec, ForeignProfileAndSizeDetected)
{
	StreamBuilder b = sample();
	b.header = StreamHeader::make(VFIO_MIG_EMU_PROFILE_P2P, kMem);
	EXPECT_EQ(parse(b.bytes()).error, StreamError::ProfileMismatch);
	b.header = StreamHeader::make(kProfile, kMem * 2);
	EXPECT_EQ(parse(b.bytes()).error, StreamError::MemSizeMismatch);
}

TEST(StreamCodec, OtherMajorVersionRejectedNewerMinorAccepted)
{
	StreamBuilder b = sample();
	b.header.version_major = 2;
	b.header.crc = b.header.compute_crc();
	EXPECT_EQ(parse(b.bytes()).error, StreamError::BadVersion);
	b.header.version_major = 1;
	b.header.version_minor = 7;
	b.header.crc = b.header.compute_crc();
	EXPECT_TRUE(parse(b.bytes()).ok());
}

TEST(StreamCodec, MustBeZeroFieldsChecked)
{
	StreamBuilder b = sample();
	b.header.flags = 1;
	b.header.crc = b.header.compute_crc();
	EXPECT_EQ(parse(b.bytes()).error, StreamError::BadHeaderField);
	StreamBuilder c = sample();
	c.records[1].reserved = 1;
	c.records[1].seal();
	EXPECT_EQ(parse(c.bytes()).error, StreamError::BadRecordField);
}

TEST(StreamCodec, UnknownTypeBadLengthBadOffsetDetected)
{
	StreamBuilder b = sample();
	b.records[1].type = 9;
	b.records[1].seal();
	EXPECT_EQ(parse(b.bytes()).error, StreamError::UnknownType);
	StreamBuilder c = sample();
	c.records[2].payload.resize(100);
	c.records[2].seal();
	EXPECT_EQ(parse(c.bytes()).error, StreamError::BadLength);
	StreamBuilder d = sample();
	d.records[2].arg = kMem - 4096; // 8 KiB payload past the end
	d.records[2].seal();
	EXPECT_EQ(parse(d.bytes()).error, StreamError::BadOffset);
	StreamBuilder e = sample();
	e.records[2].arg = 100;
	e.records[2].seal();
	EXPECT_EQ(parse(e.bytes()).error, StreamError::BadOffset);
}

TEST(StreamCodec, ResourceContextBytesAreNotState)
{
	StreamBuilder a(kProfile, kMem), b(kProfile, kMem);
	a.resource(0, 1, 2);
	b.resource(0, 1, 2, Bytes(100, 0x5a));
	auto pa = parse_stream(a.bytes(), {}, true), pb = parse_stream(b.bytes(), {}, true);
	ASSERT_TRUE(pb.ok()) << pb.describe();
	EXPECT_EQ(pb.records[0].length, kResourceSize + 100);
	EXPECT_EQ(DeviceModel::load(pa)->digest(), DeviceModel::load(pb)->digest());
	StreamBuilder c(kProfile, kMem);
	c.resource(0, 1, 2);
	c.records[0].payload.resize(kResourceSize - 1);
	c.records[0].seal();
	EXPECT_EQ(parse_stream(c.bytes(), {}, true).error, StreamError::BadLength);
}

TEST(StreamCodec, ResourceIdsAppendOrOverride)
{
	StreamBuilder b(kProfile, kMem);
	b.resource(0, 1, 10).resource(1, 1, 11).resource(0, 2, 20); // override id 0
	auto m = DeviceModel::load(parse_stream(b.bytes(), {}, true));
	ASSERT_TRUE(m);
	ASSERT_EQ(m->resources.size(), 2u);
	EXPECT_EQ(m->resources[0].cookie, 20u);
	StreamBuilder gap(kProfile, kMem);
	gap.resource(1, 1, 1); // id 1 with none loaded
	std::string why;
	EXPECT_FALSE(DeviceModel::load(parse_stream(gap.bytes(), {}, true), &why));
	EXPECT_NE(why.find("RESOURCE id 1"), std::string::npos) << why;
}

TEST(StreamCodec, DataAfterEndDetected)
{
	Bytes bytes = sample().bytes();
	bytes.push_back(0);
	EXPECT_EQ(parse(bytes).error, StreamError::DataAfterEnd);
	StreamBuilder b = sample();
	b.end(0);
	EXPECT_EQ(parse(b.bytes()).error, StreamError::DataAfterEnd);
}

TEST(StreamCodec, DigestModelFollowsLaterRecords)
{
	StreamBuilder b(kProfile, kMem);
	b.mem(0, Bytes(4096, 1));
	b.mem(0, Bytes(4096, 2));
	auto m = DeviceModel::load(parse_stream(b.bytes(), {}, true));
	ASSERT_TRUE(m);
	EXPECT_EQ(m->memory[0], 2);
	EXPECT_EQ(m->memory[4096], 0);
	// Zero state digest: config + scratch + prng + memory all zeros.
	Bytes zeros(VFIO_MIG_EMU_CONFIG_SIZE + 4 * VFIO_MIG_EMU_NR_SCRATCH + 8 + kMem, 0);
	StreamBuilder z(kProfile, kMem);
	EXPECT_EQ(DeviceModel::load(parse_stream(z.bytes(), {}, true))->digest(), crc32c(kCrcSeed, zeros));
}
