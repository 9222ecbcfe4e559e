// Migration end to end under the device's knobs: other memory sizes, resource context bytes, background dirtying.
#include "common.hpp"

#include <thread>

#include "fresh.hpp"

namespace vfiomig::test {
namespace {

class EndToEndKnobs : public ProfileTest {
protected:
	void SetUp() override
	{
		ProfileTest::SetUp();
		if (IsSkipped() || HasFatalFailure())
			return;
		REQUIRE_CONTROL();
	}
	/// A fresh instance whose knobs are set before its device is opened.
	std::unique_ptr<Fresh> make(const control::Knobs &k)
	{
		MdevInstance m = MdevInstance::create(profile());
		nl()->set_knobs(m.uuid(), k);
		Device d = open_device(m.sysfs_path());
		return std::unique_ptr<Fresh>(new Fresh{std::move(m), std::move(d)});
	}
};

TEST_P(EndToEndKnobs, OtherMemorySizeIsRejected)
{
	control::Knobs big;
	big.mem_size = 2 * VFIO_MIG_EMU_DEFAULT_MEM_SIZE;
	auto dst = make(big);
	ASSERT_EQ(emu::mem_size(dst->dev), 2u * VFIO_MIG_EMU_DEFAULT_MEM_SIZE);
	Device &s = src();
	ASSERT_OK(emu::scribble(s, 131, 2));
	Bytes stream = save(s);
	auto in = dst->dev.set_state(State::Resuming);
	auto w = write_all(in.data, stream);
	if (!w.ok()) {
		EXPECT_EQ(errno_name(w.err()), "EINVAL") << w.describe();
	}
	EXPECT_FALSE(dst->dev.try_set_state(State::Stop).ok()) << "a stream for 1 MiB loaded into a 2 MiB device";
	EXPECT_EQ(state_name(dst->dev.get_state()), "ERROR");
	ASSERT_OK(dst->dev.try_reset());
}

TEST_P(EndToEndKnobs, SmallDevicesMigrate)
{
	control::Knobs small;
	small.mem_size = 16 * VFIO_MIG_EMU_PAGE_SIZE;
	auto a = make(small), b = make(small);
	ASSERT_OK(emu::run_workload(a->dev, 40)); // more steps than pages
	ASSERT_OK(emu::write_scratch(a->dev, 0, 77));
	DeviceModel m = emu::reset_model(emu::read_config(a->dev), 16 * VFIO_MIG_EMU_PAGE_SIZE);
	emu::model_dirty(m, 40);
	m.scratch[0] = 77;
	EXPECT_EQ(emu::digest(a->dev), m.digest());
	auto out = a->dev.set_state(State::StopCopy);
	auto in = b->dev.set_state(State::Resuming);
	ASSERT_OK(pump(out.data, &in.data, {PumpUntil::Eof, {}, {}, nullptr}));
	ASSERT_OK(b->dev.try_set_state(State::Running));
	EXPECT_EQ(emu::digest(b->dev), m.digest());
}

TEST_P(EndToEndKnobs, ResourceContextBytesFollowTheSpecification)
{
	control::Knobs k;
	k.resource_bytes = 3001; // not a multiple of 8: the last draw is truncated
	auto a = make(k), b = make(control::Knobs{});
	ASSERT_OK(emu::reconfigure(a->dev, 3));
	Bytes stream;
	auto out = a->dev.set_state(State::StopCopy);
	auto in = b->dev.set_state(State::Resuming);
	ASSERT_OK(pump(out.data, &in.data, {PumpUntil::Eof, {}, {}, &stream}));
	ASSERT_OK(b->dev.try_set_state(State::Running));
	EXPECT_EQ(emu::digest(b->dev), emu::digest(a->dev));
	ParsedStream p = parse_stream(stream, expect(a->dev));
	ASSERT_TRUE(p.ok()) << p.describe();
	int seen = 0;
	for (const Record &r : p.records) {
		if (r.type != static_cast<std::uint16_t>(RecordType::Resource))
			continue;
		seen++;
		ASSERT_EQ(r.length, kResourceSize + 3001);
		// Context: splitmix64 seeded with the cookie, 8 LE bytes per draw.
		std::uint64_t cookie = 0;
		for (int i = 0; i < 8; i++)
			cookie |= std::uint64_t{r.payload[8 + i]} << (8 * i);
		std::uint64_t state = cookie;
		Bytes want;
		while (want.size() < 3001) {
			std::uint64_t z = emu::splitmix64_next(state);
			for (int i = 0; i < 8 && want.size() < 3001; i++)
				want.push_back(static_cast<std::uint8_t>(z >> (8 * i)));
		}
		EXPECT_TRUE(std::equal(want.begin(), want.end(), r.payload.begin() + kResourceSize))
			<< "context bytes of resource " << seen - 1;
	}
	EXPECT_EQ(seen, 3);
}

TEST_P(EndToEndKnobs, BackgroundDirtyingStopsWhenTheDeviceStops)
{
	control::Knobs k;
	k.dirty_rate = 5000; // pages per second
	auto a = make(k), b = make(control::Knobs{});
	std::uint32_t d0 = emu::digest(a->dev);
	// 5000 pages/s change the digest within milliseconds; the limit only
	// bounds a device whose workload does not run (a slow KASAN guest
	// under load took more than 100 ms).
	EXPECT_TRUE(eventually([&] { return emu::digest(a->dev) != d0; }))
		<< "the background workload does not run in RUNNING";

	MigrationSession out;
	auto in = b->dev.set_state(State::Resuming);
	if (has(kMigPreCopy)) {
		out = a->dev.set_state(State::PreCopy);
		for (int round = 0; round < 3; round++) {
			ASSERT_OK(pump(out.data, &in.data, {PumpUntil::NoMsg, {}, {}, nullptr}));
			std::this_thread::sleep_for(std::chrono::milliseconds(50));
		}
		EXPECT_TRUE(eventually([&] {
			auto info = out.data.precopy_info();
			return info && info->dirty_bytes > 0;
		})) << "background dirtying not seen in PRE_COPY";
		a->dev.set_state(State::StopCopy);
	} else {
		a->dev.set_state(State::Stop);
		out = a->dev.set_state(State::StopCopy);
	}
	std::uint32_t stopped = emu::digest(a->dev);
	std::this_thread::sleep_for(std::chrono::milliseconds(100));
	EXPECT_EQ(emu::digest(a->dev), stopped) << "the device changed while stopped";
	ASSERT_OK(pump(out.data, &in.data, {PumpUntil::Eof, {}, {}, nullptr}));
	EXPECT_EQ(emu::digest(a->dev), stopped);
	ASSERT_OK(b->dev.try_set_state(State::Stop));
	EXPECT_EQ(emu::digest(b->dev), stopped);
}

VFIOMIG_INSTANTIATE_PROFILES(EndToEndKnobs);

} // namespace
} // namespace vfiomig::test
