// VFIO_MIG_GET_PRECOPY_INFO: only in PRE_COPY states, initial_bytes never increases, legacy flags echoed.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class PrecopyInfo : public ProfileTest {};

TEST_P(PrecopyInfo, RefusedOutsidePrecopyStates)
{
	Device &dev = src();
	auto s = dev.set_state(State::StopCopy);
	ASSERT_TRUE(s.has_data());
	EXPECT_ERRNO(s.data.precopy_info(), EINVAL);
	if (!has(kMigPreCopy))
		return;
	dev.set_state(State::Stop);
	dev.set_state(State::Running);
	auto pre = dev.set_state(State::PreCopy);
	ASSERT_TRUE(pre.has_data());
	EXPECT_OK(pre.data.precopy_info());
	dev.set_state(State::StopCopy); // same session, no longer PRE_COPY
	EXPECT_ERRNO(pre.data.precopy_info(), EINVAL);
}

TEST_P(PrecopyInfo, InitialBytesNeverIncrease)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &dev = src();
	if (emulated()) {
		ASSERT_OK(emu::scribble(dev, 11, 6));
	}
	auto s = dev.set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	auto first = s.data.precopy_info();
	ASSERT_OK(first);
	EXPECT_GT(first->initial_bytes, 0u) << "no initial data announced";
	std::uint64_t last = first->initial_bytes;
	std::uint64_t total = 0;
	std::uint8_t buf[1000];
	for (int i = 0;; i++) {
		auto r = s.data.read(buf);
		if (!r) {
			EXPECT_EQ(errno_name(r.err()), "ENOMSG") << r.describe();
			break;
		}
		ASSERT_GT(*r, 0u) << "read() == 0 in PRE_COPY, not ENOMSG, at the end of the initial data";
		total += *r;
		if (emulated() && i < 30 && i % 3 == 0) {
			// A guest write in between adds dirty bytes, never initial ones.
			ASSERT_OK(emu::write_pattern(dev, 8 * VFIO_MIG_EMU_PAGE_SIZE, 16, static_cast<std::uint32_t>(i)));
		}
		auto info = s.data.precopy_info();
		ASSERT_OK(info);
		EXPECT_LE(info->initial_bytes, last) << "initial_bytes grew after " << total << " bytes";
		last = info->initial_bytes;
		ASSERT_LT(i, 5000) << "no temporary end of stream after " << total << " bytes";
	}
	auto end = s.data.precopy_info();
	ASSERT_OK(end);
	EXPECT_EQ(end->initial_bytes, 0u) << "at the temporary end of stream";
	EXPECT_EQ(end->dirty_bytes, 0u) << "at the temporary end of stream";
	REQUIRE_EMU("BAR2 writes (dirty bytes)");
	ASSERT_OK(emu::write_pattern(dev, 0, VFIO_MIG_EMU_PAGE_SIZE, 1));
	auto dirty = s.data.precopy_info();
	ASSERT_OK(dirty);
	EXPECT_GT(dirty->dirty_bytes, 0u) << "a BAR2 write did not show as dirty bytes";
	EXPECT_EQ(dirty->initial_bytes, 0u);
}

// "The dirty_bytes field tracks device state changes relative to data
// previously retrieved. This field starts at zero" (uAPI): what the device
// holds when the session starts is initial data, however it got there.
TEST_P(PrecopyInfo, DirtyBytesStartAtZero)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &dev = src();
	if (emulated()) {
		ASSERT_OK(emu::scribble(dev, 11, 6));
		ASSERT_OK(emu::run_workload(dev, 40));
	}
	auto s = dev.set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	auto first = s.data.precopy_info();
	ASSERT_OK(first);
	EXPECT_EQ(first->dirty_bytes, 0u) << "dirty_bytes on the session's first query (initial_bytes "
					  << first->initial_bytes << ")";
	if (emulated()) {
		EXPECT_GE(first->initial_bytes, 40u * VFIO_MIG_EMU_PAGE_SIZE)
			<< "the memory written before the session is not counted as initial data";
	}
}

TEST_P(PrecopyInfo, LegacyFlagsAreEchoed)
{
	REQUIRE_MIG_FLAG(kMigPreCopy);
	Device &dev = src();
	auto s = dev.set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	auto zero = s.data.precopy_info(0);
	ASSERT_OK(zero);
	EXPECT_EQ(zero->flags, 0u);
	auto high = s.data.precopy_info(0x80000000u);
	ASSERT_OK(high);
	EXPECT_EQ(high->flags, 0x80000000u) << "without the v2 opt-in flags are reserved and echoed";
}

VFIOMIG_INSTANTIATE_PROFILES(PrecopyInfo);

} // namespace
} // namespace vfiomig::test
