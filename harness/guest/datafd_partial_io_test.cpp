// Reads and writes of odd sizes reassemble exactly the same stream and state.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class DataFdPartialIo : public ProfileTest {};

TEST_P(DataFdPartialIo, OddSizedReadsAndWritesReassembleTheStream)
{
	REQUIRE_DESTINATION();
	Device &dev = src();
	if (emulated()) {
		ASSERT_OK(emu::scribble(dev, 9, 4));
	}
	dev.set_state(State::Stop);
	// Two sessions on a stopped device produce the same stream.
	auto whole = dev.set_state(State::StopCopy);
	Bytes a, b;
	ASSERT_OK(pump(whole.data, nullptr, {PumpUntil::Eof, {}, {}, &a}));
	dev.set_state(State::Stop);
	auto odd = dev.set_state(State::StopCopy);
	ASSERT_OK(pump(odd.data, nullptr, {PumpUntil::Eof, {1, 3, 7, 4093, 13, 65537, 31, 8191}, {}, &b}));
	dev.set_state(State::Stop);
	ASSERT_EQ(a.size(), b.size());
	EXPECT_TRUE(a == b) << "odd-sized reads gave a different stream";
	if (emulated()) {
		ParsedStream parsed = parse_stream(b, expect(dev));
		ASSERT_TRUE(parsed.ok()) << parsed.describe();
	}

	Device &d = dst();
	auto r = d.set_state(State::Resuming);
	ASSERT_TRUE(r.has_data());
	ASSERT_OK(load_stream(d, r.data, b, {5, 1, 4099, 31, 17000, 2}));
	ASSERT_OK(d.try_set_state(State::Stop));
	if (emulated()) {
		EXPECT_EQ(emu::digest(d), emu::digest(dev));
	}
}

VFIOMIG_INSTANTIATE_PROFILES(DataFdPartialIo);

} // namespace
} // namespace vfiomig::test
