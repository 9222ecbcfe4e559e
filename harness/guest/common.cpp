#include "common.hpp"

#include <filesystem>
#include <map>
#include <optional>

namespace vfiomig::test {

namespace {
std::map<std::pair<Profile, int>, std::unique_ptr<Instance>> &instances()
{
	static std::map<std::pair<Profile, int>, std::unique_ptr<Instance>> m;
	return m;
}
} // namespace

Instance &pool(Profile p, int slot)
{
	auto &m = instances();
	auto &ptr = m[{p, slot}];
	if (!ptr) {
		MdevInstance mdev = MdevInstance::create(p);
		Device dev = Device::open_sysfs(mdev.sysfs_path());
		std::uint64_t flags = dev.migration_flags();
		ptr = std::unique_ptr<Instance>(new Instance{std::move(mdev), std::move(dev), flags});
	}
	return *ptr;
}

void release_pool() { instances().clear(); }

namespace {
struct ControlPlane {
	std::optional<control::Client> client;
	std::unique_ptr<control::EventSubscription> events;
	std::string failure;
};

ControlPlane &control_plane()
{
	static ControlPlane cp = [] {
		ControlPlane p;
		try {
			p.client.emplace(control::Client::open());
			p.events = std::make_unique<control::EventSubscription>();
		} catch (const Error &e) {
			p.client.reset();
			p.failure = e.what();
		}
		return p;
	}();
	return cp;
}
} // namespace

control::Client *nl(std::string *why)
{
	ControlPlane &cp = control_plane();
	if (!cp.client && why)
		*why = cp.failure;
	return cp.client ? &*cp.client : nullptr;
}

control::EventSubscription *events()
{
	return nl() ? control_plane().events.get() : nullptr;
}
std::string profile_param_name(const ::testing::TestParamInfo<Profile> &info)
{
	return profile_name(info.param);
}

void ProfileFixture::SetUp()
{
	if (!module_loaded())
		GTEST_SKIP() << "vfio_mig_emu is not loaded (" << mdev_parent_path() << " absent)";
	// The module offers only the profiles the kernel's vfio core can drive
	// (none with PRE_COPY before the core knew PRE_COPY, as on Linux 6.1).
	if (!std::filesystem::exists(mdev_type_path(profile())))
		GTEST_SKIP() << "profile " << profile_name(profile()) << " not offered by the module ("
			     << mdev_type_path(profile()) << " absent: the vfio core lacks its states)";
	try {
		src_ = &pool(profile(), 0);
	} catch (const Error &e) {
		FAIL() << "cannot create a " << profile_name(profile()) << " instance: " << e.what();
	}
	ASSERT_OK(src_->dev.try_reset());
	ASSERT_EQ(src_->flags, profile_mig_flags(profile()))
		<< "migration flags " << mig_flags_name(src_->flags) << " differ from the uAPI header's "
		<< mig_flags_name(profile_mig_flags(profile()));
}

Device &ProfileFixture::dst()
{
	if (!dst_) {
		dst_ = &pool(profile(), 1);
		dst_->dev.reset();
	}
	return dst_->dev;
}

MigrationSession ProfileFixture::go(Device &dev, State to)
{
	return dev.set_state(to);
}

Bytes ProfileFixture::save(Device &dev, const PumpOptions &opt_in)
{
	PumpOptions opt = opt_in;
	Bytes out;
	opt.capture = &out;
	opt.until = PumpUntil::Eof;
	MigrationSession s = dev.set_state(State::StopCopy);
	if (!s.has_data())
		throw Error(EPROTO, "SET STOP_COPY on " + dev.label() + " returned no data fd");
	pump(s.data, nullptr, opt).value();
	dev.set_state(State::Stop);
	return out;
}

Status ProfileFixture::load_stream(Device &, DataFd &fd, ByteSpan stream, const std::vector<std::size_t> &sizes)
{
	auto r = write_all(fd, stream, sizes);
	if (!r)
		return Status::failure(r.err(), r.context());
	return Unit{};
}

} // namespace vfiomig::test
