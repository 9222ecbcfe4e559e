// Fault triggers fire on exactly the calls they name (nth, every nth, first N, seeded random), per device only.
#include "control_expect.hpp"

#include <algorithm>

namespace vfiomig::test {
namespace {

using namespace control;

class FaultTrigger : public FullProfileTest {
protected:
	/// Adds `f` (DATA_SIZE, FAIL) and returns which of `calls` calls failed.
	std::vector<bool> pattern(Fault f, int calls)
	{
		Device &dev = src();
		f.site = Site::DataSize;
		f.effect = Effect::Fail;
		f.err = ENOMEM;
		std::uint32_t id = nl()->add_fault(dev.label(), f);
		std::vector<bool> hit;
		for (int i = 0; i < calls; i++) {
			auto r = dev.try_stop_copy_size();
			EXPECT_TRUE(r.ok() || r.err() == ENOMEM) << r.describe();
			hit.push_back(!r.ok());
		}
		Fault after = nl()->fault(dev.label(), id);
		EXPECT_EQ(after.calls, static_cast<std::uint64_t>(calls));
		EXPECT_EQ(after.hits, static_cast<std::uint64_t>(std::count(hit.begin(), hit.end(), true)));
		nl()->clear_faults(dev.label(), id);
		return hit;
	}
	static Fault trig(Trigger t, std::uint32_t n)
	{
		Fault f;
		f.trigger = t;
		f.n = n;
		return f;
	}
};

TEST_F(FaultTrigger, NthFiresOnlyOnTheNthCall)
{
	FaultGuard g(src().label());
	EXPECT_EQ(pattern(trig(Trigger::Nth, 3), 7), std::vector<bool>({0, 0, 1, 0, 0, 0, 0}));
}

TEST_F(FaultTrigger, EveryNthFiresOnMultiplesOfN)
{
	FaultGuard g(src().label());
	EXPECT_EQ(pattern(trig(Trigger::EveryNth, 3), 7), std::vector<bool>({0, 0, 1, 0, 0, 1, 0}));
	EXPECT_EQ(pattern(Fault{}, 3), std::vector<bool>({1, 1, 1})) << "no trigger: every call";
}

TEST_F(FaultTrigger, FirstNFiresOnTheFirstNCalls)
{
	FaultGuard g(src().label());
	EXPECT_EQ(pattern(trig(Trigger::FirstN, 2), 5), std::vector<bool>({1, 1, 0, 0, 0}));
}

/// The uAPI's rule: splitmix64 seeded with SEED, one draw per call, fires
/// when (z >> 32) % 1000000 < ppm.
std::vector<bool> model(std::uint64_t seed, std::uint32_t ppm, int calls)
{
	std::vector<bool> out;
	std::uint64_t state = seed;
	for (int i = 0; i < calls; i++)
		out.push_back((emu::splitmix64_next(state) >> 32) % 1000000 < ppm);
	return out;
}

TEST_F(FaultTrigger, RandomWithTheSameSeedRepeatsItsPattern)
{
	FaultGuard g(src().label());
	Fault f;
	f.trigger = Trigger::Random;
	f.probability_ppm = 300000;
	f.seed = 42;
	auto a = pattern(f, 64);
	auto b = pattern(f, 64);
	EXPECT_EQ(a, b) << "same seed, different hits";
	auto hits = std::count(a.begin(), a.end(), true);
	EXPECT_GT(hits, 5) << "30% of 64 calls";
	EXPECT_LT(hits, 40) << "30% of 64 calls";
	f.seed = 43;
	EXPECT_NE(pattern(f, 64), a) << "another seed gave the same 64 hits";
	EXPECT_EQ(a, model(42, 300000, 64)) << "the pattern differs from the uAPI header's PRNG rule";
	f.seed.reset();
	EXPECT_EQ(pattern(f, 64), model(0, 300000, 64)) << "SEED defaults to 0";
	f.probability_ppm = 1000000;
	auto all = pattern(f, 16);
	EXPECT_EQ(std::count(all.begin(), all.end(), true), 16) << "1000000 ppm is every call";
}

TEST_F(FaultTrigger, FaultOnOneDeviceNeverFiresOnAnother)
{
	Device &a = src();
	Device &b = dst();
	FaultGuard ga(a.label()), gb(b.label());
	nl()->reset_counters(b.label());
	std::vector<std::uint32_t> ids;
	for (Site s : {Site::SetState, Site::DataSize, Site::Reset})
		ids.push_back(nl()->add_fault(a.label(), fault(s, Effect::FailToError)));
	ASSERT_OK(b.try_set_state(State::Stop));
	ASSERT_OK(b.try_stop_copy_size());
	auto out = b.set_state(State::StopCopy);
	std::uint8_t buf[64];
	ASSERT_OK(out.data.read(buf));
	ASSERT_OK(b.try_reset());
	EXPECT_EQ(state_name(b.get_state()), "RUNNING");
	for (const Fault &f : nl()->faults(a.label()))
		EXPECT_EQ(f.calls, 0u) << describe(f) << ": counted calls of another device";
	EXPECT_EQ(nl()->device(b.label()).counters.faults_hit, 0u);
	EXPECT_ERRNO(a.try_stop_copy_size(), EIO) << "the fault is there on its own device";
	EXPECT_EQ(state_name(a.get_state()), "ERROR");
}

} // namespace
} // namespace vfiomig::test
