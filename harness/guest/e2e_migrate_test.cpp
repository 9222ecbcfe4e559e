// A workload's state migrates from a source to a destination instance with equal digests.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class EndToEnd : public ProfileTest {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("digest (DataIntegrity covers foreign targets)");
		ProfileTest::SetUp();
	}
};

TEST_P(EndToEnd, StopCopyMigrationPreservesTheDigest)
{
	Device &s = src();
	Device &d = dst();
	ASSERT_OK(emu::scribble(s, 31, 16));
	ASSERT_OK(emu::reconfigure(s, 2));
	ASSERT_OK(emu::write_scratch(s, 63, 0xfeedf00d));
	auto out = s.set_state(State::StopCopy);
	ASSERT_TRUE(out.has_data());
	auto in = d.set_state(State::Resuming);
	ASSERT_TRUE(in.has_data());
	Bytes stream;
	auto p = pump(out.data, &in.data, {PumpUntil::Eof, {}, {}, &stream});
	ASSERT_OK(p);
	EXPECT_EQ(p->bytes_read, p->bytes_written);
	std::uint32_t src_digest = emu::digest(s);
	ASSERT_OK(d.try_set_state(State::Running));
	EXPECT_EQ(emu::digest(d), src_digest);
	EXPECT_EQ(emu::read_scratch(d, 63).value(), 0xfeedf00du);
	EXPECT_EQ(emu::read_regs(d).nr_resources, emu::read_regs(s).nr_resources);

	// The stream itself is valid and describes exactly this state.
	ParsedStream parsed = parse_stream(stream, expect(s));
	ASSERT_TRUE(parsed.ok()) << parsed.describe();
	EXPECT_EQ(end_digest(parsed), src_digest);
	std::string why;
	auto model = DeviceModel::load(parsed, &why);
	ASSERT_TRUE(model) << why;
	EXPECT_EQ(model->digest(), src_digest) << "digest recomputed from the stream";
}

TEST_P(EndToEnd, PrecopyMigrationPreservesTheDigest)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &s = src();
	Device &d = dst();
	ASSERT_OK(emu::scribble(s, 41, 16));
	auto out = s.set_state(State::PreCopy);
	ASSERT_TRUE(out.has_data());
	auto in = d.set_state(State::Resuming);
	ASSERT_TRUE(in.has_data());
	auto p1 = pump(out.data, &in.data, {PumpUntil::NoMsg, {}, {}, nullptr});
	ASSERT_OK(p1);
	// The guest keeps running during precopy: more dirt, sent again.
	ASSERT_OK(emu::scribble(s, 42, 8));
	auto p2 = pump(out.data, &in.data, {PumpUntil::NoMsg, {}, {}, nullptr});
	ASSERT_OK(p2);
	EXPECT_GT(p2->bytes_read, 0u) << "pages dirtied in PRE_COPY were not sent";
	auto stop = s.set_state(State::StopCopy);
	EXPECT_FALSE(stop.has_data());
	auto p3 = pump(out.data, &in.data, {PumpUntil::Eof, {}, {}, nullptr});
	ASSERT_OK(p3);
	std::uint32_t src_digest = emu::digest(s);
	ASSERT_OK(d.try_set_state(State::Running));
	EXPECT_EQ(emu::digest(d), src_digest);
}

VFIOMIG_INSTANTIATE_PROFILES(EndToEnd);

} // namespace
} // namespace vfiomig::test
