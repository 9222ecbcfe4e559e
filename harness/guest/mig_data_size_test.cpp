// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE announces at least, and for this device exactly, what STOP_COPY produces.
#include "common.hpp"

namespace vfiomig::test {
namespace {

class MigDataSize : public ProfileTest {};

TEST_P(MigDataSize, CoversTheBytesStopCopyProduces)
{
	REQUIRE_CAP(data_size, "MIG_DATA_SIZE");
	Device &dev = src();
	if (emulated()) {
		ASSERT_OK(emu::scribble(dev, 21, 10));
	}
	dev.set_state(State::Stop);
	auto size = dev.try_stop_copy_size();
	ASSERT_OK(size);
	auto s = dev.set_state(State::StopCopy);
	ASSERT_TRUE(s.has_data());
	auto p = pump(s.data, nullptr, {PumpUntil::Eof, {}, {}, nullptr});
	ASSERT_OK(p);
	// The uAPI calls it an estimate: another driver may announce less.
	::testing::Test::RecordProperty("announced_bytes", std::to_string(*size));
	::testing::Test::RecordProperty("produced_bytes", std::to_string(p->bytes_read));
	if (emulated()) {
		EXPECT_EQ(*size, p->bytes_read) << "the emulated device knows its exact stream size";
	}
}

// "Note: Can be called on each device state" (uAPI): every state the
// device's flags reach, sessions open where the state has one.
TEST_P(MigDataSize, AnsweredInEveryState)
{
	REQUIRE_CAP(data_size, "MIG_DATA_SIZE");
	Device &dev = src();
	std::vector<State> states = {State::Running, State::Stop, State::StopCopy, State::Stop};
	if (has(kMigP2P))
		states.insert(states.end(), {State::RunningP2P, State::Stop});
	if (has(kMigPreCopy)) {
		states.insert(states.end(), {State::Running, State::PreCopy});
		if (has(kMigP2P))
			states.push_back(State::PreCopyP2P);
		states.insert(states.end(), {State::StopCopy, State::Stop});
	}
	std::vector<MigrationSession> sessions; // kept open: the states they belong to
	for (State st : states) {
		auto r = dev.try_set_state(st);
		ASSERT_OK(r) << "to " << state_name(st);
		if (r->has_data())
			sessions.push_back(std::move(*r));
		EXPECT_OK(dev.try_stop_copy_size()) << "in " << state_name(st);
		if (st == State::Stop)
			sessions.clear();
	}
	// RESUMING last: leaving it without a stream would fail; reset ends it.
	auto r = dev.try_set_state(State::Resuming);
	ASSERT_OK(r);
	EXPECT_OK(dev.try_stop_copy_size()) << "in RESUMING";
	r->data.close();
	ASSERT_OK(dev.try_reset());
}

TEST_P(MigDataSize, ProbeAnswersGetOnly)
{
	REQUIRE_CAP(data_size, "MIG_DATA_SIZE");
	Device &dev = src();
	EXPECT_EQ(errno_name(dev.probe_feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_GET)),
		  errno_name(0));
	EXPECT_EQ(errno_name(dev.probe_feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_SET)),
		  "EINVAL");
}

VFIOMIG_INSTANTIATE_PROFILES(MigDataSize);

} // namespace
} // namespace vfiomig::test
