// Truncated, corrupted, reordered, foreign and future streams are rejected, and RESET recovers the device.
#include "common.hpp"

namespace vfiomig::test {
namespace {

enum class Damage { Empty, HeaderOnly, Truncated, CutMidRecord, BadCrc, Reordered, LostRecord, WrongProfile,
		    WrongVersion, HeaderFlags, BadCrcOverridden, RecordReserved, WrongDigest, DataAfterEnd, UnknownType,
		    MemOutOfRange, MissingResource };

std::string damage_name(Damage d)
{
	switch (d) {
	case Damage::Empty: return "Empty";
	case Damage::HeaderOnly: return "HeaderOnly";
	case Damage::HeaderFlags: return "HeaderFlags";
	case Damage::BadCrcOverridden: return "BadCrcOverridden";
	case Damage::RecordReserved: return "RecordReserved";
	case Damage::MemOutOfRange: return "MemOutOfRange";
	case Damage::MissingResource: return "MissingResource";
	case Damage::Truncated: return "Truncated";
	case Damage::CutMidRecord: return "CutMidRecord";
	case Damage::BadCrc: return "BadCrc";
	case Damage::Reordered: return "Reordered";
	case Damage::LostRecord: return "LostRecord";
	case Damage::WrongProfile: return "WrongProfile";
	case Damage::WrongVersion: return "WrongVersion";
	case Damage::WrongDigest: return "WrongDigest";
	case Damage::DataAfterEnd: return "DataAfterEnd";
	case Damage::UnknownType: return "UnknownType";
	}
	return "?";
}

/// Applies one kind of damage to a valid stream (re-sealing checksums where
/// the damage is meant to be caught by something else than the crc).
Bytes damage(const Bytes &good, Damage kind, std::uint32_t profile)
{
	ParsedStream p = parse_stream(good);
	if (!p.ok() || p.records.size() < 3)
		throw Error(EPROTO, "source stream not valid: " + p.describe());
	StreamHeader h = *p.header;
	std::vector<Record> r = p.records;
	auto find = [&](RecordType t) {
		for (std::size_t i = 0; i < r.size(); i++)
			if (r[i].type == static_cast<std::uint16_t>(t))
				return i;
		throw Error(EPROTO, "source stream has no " + record_type_name(static_cast<std::uint16_t>(t)) + " record");
	};
	switch (kind) {
	case Damage::Empty:
		return {};
	case Damage::HeaderOnly:
		return h.encode();
	case Damage::HeaderFlags:
		h.flags = 1;
		h.crc = h.compute_crc();
		break;
	case Damage::BadCrcOverridden: {
		// A corrupt copy of a MEM record, overridden by the intact original
		// that follows: the loaded state and END digest still agree, so
		// only the record crc can catch it.
		std::size_t m = find(RecordType::Mem);
		Record copy = r[m];
		r.insert(r.begin() + static_cast<std::ptrdiff_t>(m), copy);
		for (std::size_t i = 0; i < r.size(); i++) {
			r[i].seq = static_cast<std::uint32_t>(i);
			r[i].seal();
		}
		r[m].payload[7] ^= 0x20; // crc now stale
		break;
	}
	case Damage::RecordReserved:
		r[1].reserved = 1;
		r[1].seal();
		break;
	case Damage::MemOutOfRange: {
		Record &m = r[find(RecordType::Mem)];
		m.arg = h.mem_size; // a page past the end
		m.seal();
		break;
	}
	case Damage::MissingResource: {
		// Drop one RESOURCE and renumber: every record is well formed, but
		// REGS' nr_resources no longer matches what was loaded.
		r.erase(r.begin() + static_cast<std::ptrdiff_t>(find(RecordType::Resource)));
		for (std::size_t i = 0; i < r.size(); i++) {
			r[i].seq = static_cast<std::uint32_t>(i);
			r[i].seal();
		}
		break;
	}
	case Damage::Truncated: // everything but END
		return Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(r.back().offset));
	case Damage::CutMidRecord:
		return Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(r[1].offset + kRecordHeaderSize + 3));
	case Damage::BadCrc:
		r[1].payload[0] ^= 0x01;
		break;
	case Damage::Reordered:
		std::swap(r[0], r[1]);
		break;
	case Damage::LostRecord:
		r.erase(r.begin() + 1);
		break;
	case Damage::WrongProfile:
		h.profile = (profile + 1) % VFIO_MIG_EMU_PROFILE_COUNT;
		h.crc = h.compute_crc();
		break;
	case Damage::WrongVersion:
		h.version_major = VFIO_MIG_EMU_STREAM_VERSION_MAJOR + 1;
		h.crc = h.compute_crc();
		break;
	case Damage::WrongDigest:
		r.back().arg ^= 0x1;
		r.back().seal();
		break;
	case Damage::DataAfterEnd:
		r.push_back(Record::make(RecordType::Config, static_cast<std::uint32_t>(r.size()), 0,
					 Bytes(VFIO_MIG_EMU_CONFIG_SIZE, 0)));
		break;
	case Damage::UnknownType:
		r[1].type = 0x77;
		r[1].seal();
		break;
	}
	return encode_stream(h, r);
}

/// The host-side codec and model reject the stream too (structure, or a
/// loaded state that does not match the END digest).
bool codec_rejects(const Bytes &stream, const StreamExpect &exp)
{
	ParsedStream p = parse_stream(stream, exp);
	if (!p.ok())
		return true;
	auto model = DeviceModel::load(p);
	return !model || end_digest(p) != model->digest();
}

class StreamReject : public ProfileFixture,
		     public ::testing::WithParamInterface<std::tuple<Target, Damage>> {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("stream format");
		ProfileFixture::SetUp();
	}
	Target target() const override { return std::get<0>(GetParam()); }
	Damage kind() const { return std::get<1>(GetParam()); }
};

TEST_P(StreamReject, ResumeFailsAndResetRecovers)
{
	Device &s = src();
	Device &d = dst();
	std::uint32_t clean_digest = emu::digest(d);
	ASSERT_OK(emu::scribble(s, 51, 4));
	ASSERT_OK(emu::reconfigure(s, 1));
	Bytes good = save(s);
	Bytes bad = damage(good, kind(), static_cast<std::uint32_t>(profile()));
	EXPECT_TRUE(codec_rejects(bad, expect(d))) << "the codec accepts the damaged stream";

	auto in = d.set_state(State::Resuming);
	ASSERT_TRUE(in.has_data());
	auto w = write_all(in.data, bad);
	if (!w.ok()) {
		EXPECT_EQ(errno_name(w.err()), "EINVAL") << w.describe();
	}
	auto stop = d.try_set_state(State::Stop);
	EXPECT_FALSE(stop.ok()) << "RESUMING->STOP accepted a " << damage_name(kind()) << " stream"
				<< (w.ok() ? "" : " after write() failed");
	auto now = d.try_get_state();
	ASSERT_OK(now);
	if (!stop.ok()) {
		EXPECT_EQ(state_name(*now), "ERROR") << "after a rejected stream";
	}

	ASSERT_OK(d.try_reset());
	EXPECT_EQ(state_name(d.get_state()), "RUNNING");
	EXPECT_EQ(emu::digest(d), clean_digest) << "reset did not restore power-on state";

	// The good stream still loads after the reset.
	auto again = d.set_state(State::Resuming);
	ASSERT_OK(write_all(again.data, good));
	ASSERT_OK(d.try_set_state(State::Stop));
	EXPECT_EQ(emu::digest(d), emu::digest(s));
}

class StreamAccept : public ProfileTest {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("stream format");
		ProfileTest::SetUp();
	}
};

TEST_P(StreamAccept, NewerMinorVersionLoads)
{
	Device &s = src();
	Device &d = dst();
	ASSERT_OK(emu::scribble(s, 61, 2));
	Bytes good = save(s);
	ParsedStream p = parse_stream(good, expect(s));
	ASSERT_TRUE(p.ok()) << p.describe();
	StreamHeader h = *p.header;
	h.version_minor = VFIO_MIG_EMU_STREAM_VERSION_MINOR + 1;
	h.crc = h.compute_crc();
	auto in = d.set_state(State::Resuming);
	ASSERT_OK(write_all(in.data, encode_stream(h, p.records)));
	ASSERT_OK(d.try_set_state(State::Stop));
	EXPECT_EQ(emu::digest(d), emu::digest(s));
}

TEST_P(StreamAccept, LaterRecordsOverrideEarlierOnes)
{
	Device &s = src();
	Device &d = dst();
	ASSERT_OK(emu::scribble(s, 71, 2));
	ASSERT_OK(emu::write_pattern(s, 0, VFIO_MIG_EMU_PAGE_SIZE, 72)); // page 0 is in the stream
	Bytes good = save(s);
	ParsedStream p = parse_stream(good, expect(s));
	ASSERT_TRUE(p.ok()) << p.describe();
	// Prepend a MEM record of garbage for page 0 and a CONFIG of 0xff:
	// the real records that follow must win.
	std::vector<Record> recs;
	recs.push_back(Record::make(RecordType::Mem, 0, 0, Bytes(VFIO_MIG_EMU_PAGE_SIZE, 0xee)));
	for (Record r : p.records)
		recs.push_back(std::move(r));
	for (std::size_t i = 0; i < recs.size(); i++) {
		recs[i].seq = static_cast<std::uint32_t>(i);
		recs[i].seal();
	}
	auto in = d.set_state(State::Resuming);
	ASSERT_OK(write_all(in.data, encode_stream(*p.header, recs)));
	ASSERT_OK(d.try_set_state(State::Stop));
	EXPECT_EQ(emu::digest(d), emu::digest(s));
}

VFIOMIG_INSTANTIATE_PROFILES(StreamAccept);

std::string reject_name(const ::testing::TestParamInfo<std::tuple<Target, Damage>> &info)
{
	return std::get<0>(info.param).name() + "_" + damage_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Damages, StreamReject,
			 ::testing::Combine(::testing::ValuesIn(target_params()),
					    ::testing::Values(Damage::Empty, Damage::HeaderOnly, Damage::Truncated,
							      Damage::CutMidRecord, Damage::BadCrc,
							      Damage::Reordered, Damage::LostRecord,
							      Damage::WrongProfile, Damage::WrongVersion,
							      Damage::HeaderFlags, Damage::BadCrcOverridden,
							      Damage::RecordReserved,
							      Damage::WrongDigest, Damage::DataAfterEnd,
							      Damage::UnknownType, Damage::MemOutOfRange,
							      Damage::MissingResource)),
			 reject_name);

} // namespace
} // namespace vfiomig::test
