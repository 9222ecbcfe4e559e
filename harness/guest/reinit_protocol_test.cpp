// New critical data during PRE_COPY: v1 reports it as dirty data, the PRECOPY_INFOv2 opt-in as REINIT (opt-in rules, both policies, integrity, load cost).
#include <poll.h>

#include <chrono>

#include "common.hpp"
#include "fresh.hpp"

namespace vfiomig::test {
namespace {

control::Knobs load_cost(std::uint32_t us_per_resource)
{
	control::Knobs k;
	k.load_us_per_resource = us_per_resource;
	return k;
}

control::Knobs policy(control::ReinitPolicy p)
{
	control::Knobs k;
	k.reinit_policy = p;
	return k;
}

// Stream sizes of the emulated device (vfio_mig_emu.h).
constexpr std::uint64_t kRec = sizeof(vfio_mig_emu_record);
constexpr std::uint64_t kResRec = kRec + sizeof(vfio_mig_emu_resource); // RESOURCE_BYTES 0
constexpr std::uint64_t kPageRec = kRec + VFIO_MIG_EMU_PAGE_SIZE;       // one isolated page
constexpr std::uint64_t kPage = VFIO_MIG_EMU_PAGE_SIZE;

bool readable(DataFd &fd, int timeout_ms)
{
	struct pollfd p = {fd.fd().get(), POLLIN, 0};
	return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/// Reads exactly `n` bytes (or to ENOMSG) into `out`.
std::uint64_t read_n(DataFd &fd, std::uint64_t n, Bytes *out)
{
	std::uint8_t buf[4096];
	std::uint64_t got = 0;
	while (got < n) {
		auto r = fd.read(std::span(buf, std::min<std::uint64_t>(sizeof(buf), n - got)));
		if (!r && r.err() == ENOMSG)
			break;
		if (*r == 0)
			break;
		if (out)
			out->insert(out->end(), buf, buf + *r);
		got += *r;
	}
	return got;
}

class Reinit : public ::testing::Test {
protected:
	void SetUp() override
	{
		REQUIRE_EMU("reconfiguration doorbell (REINIT) and fresh instances");
		if (!module_loaded())
			GTEST_SKIP() << "vfio_mig_emu is not loaded";
		SKIP_UNLESS_OFFERED(Profile::Full);
		a_ = Fresh::make(Profile::Full);
	}
	Device &dev() { return a_->dev; }
	const std::string &uuid() { return a_->mdev->uuid(); }
	/// Opts in; skips when the device does not know the feature.
	void opt_in()
	{
		auto r = dev().try_precopy_v2_opt_in();
		if (r.err() == ENOTTY)
			GTEST_SKIP() << "PRECOPY_INFOv2 not supported: " << r.describe();
		ASSERT_OK(r);
	}
	/// PRE_COPY with everything read (temporary end of stream).
	MigrationSession drained_precopy(Bytes *stream = nullptr)
	{
		auto s = dev().set_state(State::PreCopy);
		EXPECT_TRUE(s.has_data());
		pump(s.data, nullptr, {PumpUntil::NoMsg, {}, {}, stream}).value();
		return s;
	}
	void set_knobs(const control::Knobs &k)
	{
		std::string why;
		if (!nl(&why))
			GTEST_SKIP() << "no control plane: " << why;
		nl()->set_knobs(uuid(), k);
	}
	/// Checks a whole stream rebuilds the device.
	void expect_rebuilds(const Bytes &stream)
	{
		ParsedStream p = parse_stream(stream, {static_cast<std::uint32_t>(Profile::Full), emu::mem_size(dev())});
		ASSERT_TRUE(p.ok()) << p.describe();
		auto model = DeviceModel::load(p);
		ASSERT_TRUE(model);
		EXPECT_EQ(model->digest(), emu::digest(dev()));
	}

	std::unique_ptr<Fresh> a_;
};

TEST_F(Reinit, OptInProbeAndSetAcceptedGetRefused)
{
	int probe = dev().probe_feature(VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, VFIO_DEVICE_FEATURE_SET);
	if (probe == ENOTTY)
		GTEST_SKIP() << "PRECOPY_INFOv2 not supported";
	EXPECT_EQ(errno_name(probe), errno_name(0)) << "PROBE SET";
	auto get = dev().feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, {}, "");
	EXPECT_EQ(errno_name(get.err()), "EINVAL") << "GET of a SET-only feature: " << get.describe();
	EXPECT_EQ(errno_name(dev().probe_feature(VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, VFIO_DEVICE_FEATURE_GET)),
		  "EINVAL");
	EXPECT_OK(dev().try_precopy_v2_opt_in());
}

TEST_F(Reinit, OptInRefusedWithoutPreCopy)
{
	for (Profile p : {Profile::StopCopy, Profile::P2P}) {
		auto f = Fresh::make(p);
		EXPECT_ERRNO(f->dev.try_precopy_v2_opt_in(), ENOTTY);
		EXPECT_EQ(errno_name(f->dev.probe_feature(VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2,
							  VFIO_DEVICE_FEATURE_SET)),
			  "ENOTTY")
			<< profile_name(p);
	}
}

TEST_F(Reinit, OptInEndsWhenTheDeviceIsClosed)
{
	opt_in();
	{ Device closing = std::move(a_->dev); } // closes the opted-in fd (the group allows one open)
	a_->dev = open_device(a_->mdev->sysfs_path());
	auto s = drained_precopy();
	ASSERT_OK(emu::reconfigure(dev(), 2));
	auto info = s.data.precopy_info(0);
	ASSERT_OK(info);
	EXPECT_EQ(info->flags, 0u) << "REINIT after the opt-in's device fd was closed";
	EXPECT_EQ(info->initial_bytes, 0u);
	EXPECT_EQ(info->dirty_bytes, 2 * kResRec) << "v1 again: new resources are dirty data";
}

TEST_F(Reinit, V1NewCriticalDataIsDirtyDataReadableInPrecopy)
{
	ASSERT_OK(emu::scribble(dev(), 5, 4));
	Bytes stream;
	auto s = drained_precopy(&stream);
	ASSERT_FALSE(readable(s.data, 0)) << "readable at the temporary end of stream";
	ASSERT_OK(emu::reconfigure(dev(), 3));
	auto info = s.data.precopy_info(0);
	ASSERT_OK(info);
	EXPECT_EQ(info->flags, 0u);
	EXPECT_EQ(info->initial_bytes, 0u) << "v1: initial_bytes never increases";
	EXPECT_EQ(info->dirty_bytes, 3 * kResRec) << "v1: new critical data is reported in dirty_bytes";
	EXPECT_TRUE(readable(s.data, 1000)) << "poll did not wake for new critical data";
	std::size_t before = stream.size();
	auto p = pump(s.data, nullptr, {PumpUntil::NoMsg, {}, {}, &stream});
	ASSERT_OK(p);
	EXPECT_EQ(p->bytes_read, 3 * kResRec) << "the new resources were not readable in PRE_COPY";
	EXPECT_TRUE(p->enomsg);
	auto after = s.data.precopy_info(0);
	ASSERT_OK(after);
	EXPECT_EQ(after->dirty_bytes, 0u);
	dev().set_state(State::StopCopy);
	ASSERT_OK(pump(s.data, nullptr, {PumpUntil::Eof, {}, {}, &stream}));
	std::uint8_t b[16];
	auto again = s.data.read(b);
	ASSERT_OK(again);
	EXPECT_EQ(*again, 0u) << "STOP_COPY end of stream is read() == 0, forever";
	ParsedStream parsed = parse_stream(stream, {static_cast<std::uint32_t>(Profile::Full), emu::mem_size(dev())});
	ASSERT_TRUE(parsed.ok()) << parsed.describe();
	std::size_t late = 0;
	for (const Record &r : parsed.records)
		if (r.type == VFIO_MIG_EMU_REC_RESOURCE && r.offset >= before && r.offset < before + 3 * kResRec)
			late++;
	EXPECT_EQ(late, 3u) << "the precopy bytes after the reconfiguration are not the three RESOURCE records";
	expect_rebuilds(stream);
}

TEST_F(Reinit, V1FlagsEchoedAndInitialBytesNeverGrowAcrossReconfiguration)
{
	auto s = dev().set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	auto first = s.data.precopy_info(0);
	ASSERT_OK(first);
	ASSERT_GT(first->initial_bytes, 0u);
	ASSERT_OK(emu::reconfigure(dev(), 4)); // initial data still unread
	auto echo = s.data.precopy_info(0x80000000u | VFIO_PRECOPY_INFO_REINIT);
	ASSERT_OK(echo);
	EXPECT_EQ(echo->flags, 0x80000000u | VFIO_PRECOPY_INFO_REINIT) << "v1 flags are echoed, bug-compatible";
	EXPECT_LE(echo->initial_bytes, first->initial_bytes) << "v1 initial_bytes increased";
	EXPECT_EQ(echo->dirty_bytes, 4 * kResRec);
	auto zero = s.data.precopy_info(0);
	ASSERT_OK(zero);
	EXPECT_EQ(zero->flags, 0u) << "REINIT without the opt-in";
}

TEST_F(Reinit, ReinitViaTheControlPlaneWorkload)
{
	opt_in();
	auto s = drained_precopy();
	std::string why;
	if (!nl(&why))
		GTEST_SKIP() << "no control plane: " << why;
	nl()->workload(uuid(), control::Workload::Reconfig, 2);
	auto info = s.data.precopy_info();
	ASSERT_OK(info);
	EXPECT_EQ(info->flags, VFIO_PRECOPY_INFO_REINIT);
	EXPECT_EQ(info->initial_bytes, 2 * kResRec);
	EXPECT_EQ(info->dirty_bytes, 0u);
}

TEST_F(Reinit, NoReinitForResourcesCreatedBeforeTheSession)
{
	opt_in();
	ASSERT_OK(emu::reconfigure(dev(), 3)); // RUNNING: part of the initial data
	auto s = dev().set_state(State::PreCopy);
	ASSERT_TRUE(s.has_data());
	auto info = s.data.precopy_info();
	ASSERT_OK(info);
	EXPECT_EQ(info->flags, 0u) << "REINIT for data that was initial from the start";
	EXPECT_GE(info->initial_bytes, 3 * kResRec);
}

TEST_F(Reinit, FoldPolicyMovesDirtyPagesIntoTheNewInitialData)
{
	set_knobs(policy(control::ReinitPolicy::Fold));
	opt_in();
	auto s = drained_precopy();
	ASSERT_OK(emu::write_pattern(dev(), 5 * kPage, kPage, 1));
	ASSERT_OK(emu::write_pattern(dev(), 9 * kPage, kPage, 2));
	auto before = s.data.precopy_info();
	ASSERT_OK(before);
	ASSERT_EQ(before->dirty_bytes, 2 * kPageRec);
	ASSERT_OK(emu::reconfigure(dev(), 2));
	auto info = s.data.precopy_info();
	ASSERT_OK(info);
	EXPECT_EQ(info->flags, VFIO_PRECOPY_INFO_REINIT);
	EXPECT_EQ(info->initial_bytes, 2 * kResRec + 2 * kPageRec) << "FOLD: unread dirty pages join the initial data";
	EXPECT_EQ(info->dirty_bytes, 0u) << "dirty_bytes restarts from zero";
	EXPECT_EQ(read_n(s.data, info->initial_bytes, nullptr), info->initial_bytes);
	auto done = s.data.precopy_info();
	ASSERT_OK(done);
	EXPECT_EQ(done->initial_bytes, 0u);
	EXPECT_EQ(done->dirty_bytes, 0u);
	EXPECT_EQ(done->flags, 0u) << "REINIT reported twice";
}

TEST_F(Reinit, DiscardPolicySendsDirtyPagesAfterTheNewInitialData)
{
	set_knobs(policy(control::ReinitPolicy::Discard));
	opt_in();
	auto s = drained_precopy();
	ASSERT_OK(emu::write_pattern(dev(), 5 * kPage, kPage, 1));
	ASSERT_OK(emu::write_pattern(dev(), 9 * kPage, kPage, 2));
	ASSERT_OK(emu::reconfigure(dev(), 2));
	auto info = s.data.precopy_info();
	ASSERT_OK(info);
	EXPECT_EQ(info->flags, VFIO_PRECOPY_INFO_REINIT);
	EXPECT_EQ(info->initial_bytes, 2 * kResRec) << "DISCARD: the new initial data is the resources only";
	EXPECT_EQ(info->dirty_bytes, 0u) << "dirty_bytes restarts from zero";
	EXPECT_EQ(read_n(s.data, info->initial_bytes, nullptr), info->initial_bytes);
	auto after = s.data.precopy_info();
	ASSERT_OK(after);
	EXPECT_EQ(after->initial_bytes, 0u);
	EXPECT_EQ(after->dirty_bytes, 2 * kPageRec) << "the discarded pages come back as dirty data";
}

TEST_F(Reinit, ReportedOncePerQueryAndAgainForTheNextReconfiguration)
{
	opt_in();
	auto s = drained_precopy();
	ASSERT_OK(emu::reconfigure(dev(), 1));
	ASSERT_OK(emu::reconfigure(dev(), 1));
	auto one = s.data.precopy_info();
	ASSERT_OK(one);
	EXPECT_EQ(one->flags, VFIO_PRECOPY_INFO_REINIT);
	EXPECT_EQ(one->initial_bytes, 2 * kResRec) << "two reconfigurations before a query: one REINIT covering both";
	auto none = s.data.precopy_info();
	ASSERT_OK(none);
	EXPECT_EQ(none->flags, 0u);
	ASSERT_OK(pump(s.data, nullptr, {PumpUntil::NoMsg, {}, {}, nullptr}));
	ASSERT_OK(emu::reconfigure(dev(), 1));
	auto two = s.data.precopy_info();
	ASSERT_OK(two);
	EXPECT_EQ(two->flags, VFIO_PRECOPY_INFO_REINIT) << "a later reconfiguration must be reported again";
}

TEST_F(Reinit, ReportedInPreCopyP2P)
{
	opt_in();
	auto s = drained_precopy();
	dev().set_state(State::PreCopyP2P);
	ASSERT_OK(emu::reconfigure(dev(), 1));
	EXPECT_TRUE(readable(s.data, 1000));
	auto info = s.data.precopy_info();
	ASSERT_OK(info);
	EXPECT_EQ(info->flags, VFIO_PRECOPY_INFO_REINIT);
	EXPECT_EQ(info->initial_bytes, kResRec);
}

TEST_F(Reinit, NeverOutsidePrecopyStates)
{
	opt_in();
	Bytes stream;
	auto s = drained_precopy(&stream);
	ASSERT_OK(emu::reconfigure(dev(), 2)); // never queried in PRE_COPY
	dev().set_state(State::StopCopy);
	EXPECT_ERRNO(s.data.precopy_info(), EINVAL);
	auto p = pump(s.data, nullptr, {PumpUntil::Eof, {}, {}, &stream});
	ASSERT_OK(p);
	EXPECT_TRUE(p->eof);
	EXPECT_ERRNO(s.data.precopy_info(), EINVAL);
	expect_rebuilds(stream);
}

TEST_F(Reinit, PollWaitsAtTheTemporaryEndAndWakesForNewInitialData)
{
	opt_in();
	auto s = drained_precopy();
	std::uint8_t b[64];
	EXPECT_ERRNO(s.data.read(b), ENOMSG);
	EXPECT_FALSE(readable(s.data, 50)) << "poll reported data at the temporary end of stream";
	ASSERT_OK(emu::reconfigure(dev(), 1));
	EXPECT_TRUE(readable(s.data, 1000)) << "poll did not wake for new initial data";
	auto info = s.data.precopy_info();
	ASSERT_OK(info);
	EXPECT_EQ(read_n(s.data, UINT64_MAX, nullptr), info->initial_bytes);
	EXPECT_ERRNO(s.data.read(b), ENOMSG);
}

TEST_F(Reinit, LoadingResourcesCostsTimeInsideWriteOnTheDestination)
{
	auto d = Fresh::make(Profile::Full);
	std::string why;
	if (!nl(&why))
		GTEST_SKIP() << "no control plane: " << why;
	nl()->set_knobs(d->mdev->uuid(), load_cost(20000));
	ASSERT_OK(emu::reconfigure(dev(), 4));
	auto out = dev().set_state(State::StopCopy);
	Bytes stream;
	ASSERT_OK(pump(out.data, nullptr, {PumpUntil::Eof, {}, {}, &stream}));
	auto in = d->dev.set_state(State::Resuming);
	auto t0 = std::chrono::steady_clock::now();
	ASSERT_OK(write_all(in.data, stream));
	auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
	EXPECT_GE(ms, 80.0) << "4 resources at 20 ms each loaded in " << ms << " ms";
	ASSERT_OK(d->dev.try_set_state(State::Running));
	EXPECT_EQ(emu::digest(d->dev), emu::digest(dev()));
}

class ReinitIntegrity : public Reinit, public ::testing::WithParamInterface<control::ReinitPolicy> {};

TEST_P(ReinitIntegrity, DigestEqualAfterMigratingThroughAReinit)
{
	set_knobs(policy(GetParam()));
	opt_in();
	auto d = Fresh::make(Profile::Full);
	ASSERT_OK(emu::scribble(dev(), 91, 8));
	auto out = dev().set_state(State::PreCopy);
	auto in = d->dev.set_state(State::Resuming);
	ASSERT_OK(pump(out.data, &in.data, {PumpUntil::NoMsg, {}, {}, nullptr}));
	ASSERT_OK(emu::scribble(dev(), 92, 8)); // dirty, unread
	ASSERT_OK(emu::reconfigure(dev(), 3));
	auto info = out.data.precopy_info();
	ASSERT_OK(info);
	ASSERT_EQ(info->flags, VFIO_PRECOPY_INFO_REINIT);
	// Read half of the new initial data, then more guest activity.
	std::uint8_t buf[256];
	auto half = out.data.read(std::span(buf, std::min<std::size_t>(sizeof(buf), info->initial_bytes / 2 + 1)));
	ASSERT_OK(half);
	ASSERT_OK(write_all(in.data, ByteSpan(buf, *half)));
	ASSERT_OK(emu::scribble(dev(), 93, 4));
	ASSERT_OK(emu::reconfigure(dev(), 1));
	ASSERT_OK(pump(out.data, &in.data, {PumpUntil::NoMsg, {}, {}, nullptr}));
	dev().set_state(State::StopCopy);
	ASSERT_OK(pump(out.data, &in.data, {PumpUntil::Eof, {}, {}, nullptr}));
	ASSERT_OK(d->dev.try_set_state(State::Running));
	EXPECT_EQ(emu::digest(d->dev), emu::digest(dev()));
	EXPECT_EQ(emu::read_regs(d->dev).nr_resources, 4u);
}

INSTANTIATE_TEST_SUITE_P(Policies, ReinitIntegrity,
			 ::testing::Values(control::ReinitPolicy::Fold, control::ReinitPolicy::Discard),
			 [](const auto &param) { return control::reinit_policy_name(param.param); });

} // namespace
} // namespace vfiomig::test
