// DEV_GET is a query: it leaves a live precopy session exactly as it was (no REINIT redrawn at the query's moment).
#include "control_expect.hpp"
#include "fresh.hpp"

namespace vfiomig::test {
namespace {

using namespace control;

class DevGetSideEffects : public ::testing::Test {
protected:
	void SetUp() override
	{
		REQUIRE_CONTROL();
		SKIP_UNLESS_OFFERED(Profile::Full);
	}

	/// On a fresh v2 device: drain PRE_COPY, add a resource (new initial
	/// data, FOLD), optionally DEV_GET, dirty pages, then ask the session.
	/// std::nullopt when the device lacks the opt-in.
	std::optional<PrecopyInfo> run(bool dev_get)
	{
		auto f = Fresh::make(Profile::Full);
		auto r = f->dev.try_precopy_v2_opt_in();
		if (r.err() == ENOTTY)
			return std::nullopt;
		r.value();
		auto s = f->dev.set_state(State::PreCopy);
		pump(s.data, nullptr, {PumpUntil::NoMsg, {}, {}, nullptr}).value();
		const std::string uuid = f->mdev->uuid();
		nl()->workload(uuid, Workload::Reconfig, 1);
		if (dev_get)
			nl()->device(uuid);
		nl()->workload(uuid, Workload::Dirty, 8);
		PrecopyInfo info = s.data.precopy_info().value();
		f->dev.set_state(State::Running);
		return info;
	}
};

TEST_F(DevGetSideEffects, ADevGetBetweenAReconfigAndTheNextQueryChangesNothing)
{
	auto q = run(false);
	if (!q)
		GTEST_SKIP() << "PRECOPY_INFOv2 not supported";
	PrecopyInfo quiet = *q;
	PrecopyInfo queried = run(true).value();
	// FOLD: the pages dirty when the session takes in the new resource
	// join the initial data. That moment is the session's next read or
	// PRECOPY_INFO, never a DEV_GET of some observer.
	EXPECT_EQ(queried.initial_bytes, quiet.initial_bytes)
		<< "DEV_GET redrew the session's initial data (dirty " << queried.dirty_bytes << " vs "
		<< quiet.dirty_bytes << ")";
	EXPECT_EQ(queried.dirty_bytes, quiet.dirty_bytes);
	EXPECT_EQ(queried.flags, quiet.flags);
}

} // namespace
} // namespace vfiomig::test
