#include "common.hpp"

#include "fixture_path.hpp"
#include "known_issues.hpp"

#include <gtest/gtest-spi.h>

#include <filesystem>
#include <map>
#include <optional>

namespace vfiomig::test {

namespace {

TargetConfig &config()
{
	static TargetConfig c;
	return c;
}

// Key: (profile or -1 for the foreign target, slot).
using PoolKey = std::pair<int, int>;
std::map<PoolKey, std::unique_ptr<Instance>> &instances()
{
	static std::map<PoolKey, std::unique_ptr<Instance>> m;
	return m;
}

PoolKey key_of(const Target &t, int slot)
{
	return {t.profile ? static_cast<int>(*t.profile) : -1, slot};
}

std::unique_ptr<Instance> open_instance(std::optional<MdevInstance> mdev, const std::string &path)
{
	Device dev = Device::open_sysfs(path, config().backend);
	MigrationCaps caps = dev.migration_caps();
	return std::unique_ptr<Instance>(new Instance{std::move(mdev), std::move(dev), caps.flags, caps});
}

// The last path component of a sysfs symlink, or "".
std::string link_name(const std::string &path)
{
	std::error_code ec;
	auto t = std::filesystem::read_symlink(path, ec);
	return ec ? std::string() : t.filename().string();
}

} // namespace

const char *const kTargetUsage =
	"target options (before or among the googletest flags):\n"
	"  --device PATH          run on this vfio device instead of creating vfio_mig_emu\n"
	"                         instances: its sysfs path, /sys/bus/mdev/devices/UUID or\n"
	"                         /sys/bus/pci/devices/DDDD:BB:DD.F (bound to vfio-pci or a\n"
	"                         variant driver). Give it twice: the second is the\n"
	"                         destination; with one, tests needing two instances skip.\n"
	"  --backend auto|group|cdev  how to open it: group + container (/dev/vfio/N),\n"
	"                         device cdev + iommufd (/dev/vfio/devices/vfioX, /dev/iommu),\n"
	"                         or auto (group when the device has one, else cdev).\n"
	"                         Also applies to the emulated device's instances.\n"
	"Tests that need vfio_mig_emu (control plane, registers, digest, stream format)\n"
	"or a migration flag/feature the device lacks are skipped with the reason.\n";

std::optional<TargetConfig> parse_target_options(int &argc, char **argv, std::string &error)
{
	TargetConfig c;
	int out = 1;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto value = [&](const std::string &opt) -> std::optional<std::string> {
			if (a.starts_with(opt + "="))
				return a.substr(opt.size() + 1);
			if (a == opt && i + 1 < argc)
				return std::string(argv[++i]);
			error = opt + " needs a value";
			return std::nullopt;
		};
		if (a == "--device" || a.starts_with("--device=")) {
			auto v = value("--device");
			if (!v)
				return std::nullopt;
			std::error_code ec;
			if (!std::filesystem::is_directory(*v, ec)) {
				error = "--device " + *v + ": no such sysfs device directory";
				return std::nullopt;
			}
			if (c.devices.size() == 2) {
				error = "--device given more than twice (source and destination)";
				return std::nullopt;
			}
			c.devices.push_back(std::filesystem::canonical(*v, ec).string());
		} else if (a == "--backend" || a.starts_with("--backend=")) {
			auto v = value("--backend");
			if (!v)
				return std::nullopt;
			auto b = parse_backend(*v);
			if (!b) {
				error = "--backend " + *v + ": want auto, group or cdev";
				return std::nullopt;
			}
			c.backend = *b;
		} else {
			argv[out++] = argv[i]; // googletest's, or unknown: InitGoogleTest decides
		}
	}
	argc = out;
	argv[argc] = nullptr;
	return c;
}

void configure_targets(TargetConfig c)
{
	config() = std::move(c);
	for (std::size_t i = 0; i < config().devices.size(); i++) {
		const Instance &in = pool(Target{}, static_cast<int>(i));
		if (!in.flags)
			throw_error(ENOTTY, config().devices[i] + " is not migratable: " + in.caps.describe());
	}
	try {
		(void)foreign_known_issues();
	} catch (const KnownIssueError &e) {
		throw Error(EINVAL, std::string("the known issues of ") + foreign_driver() + " are not usable:\n" + e.what());
	}
}

const TargetConfig &target_config() { return config(); }

bool emulated() { return config().devices.empty(); }

std::string foreign_driver()
{
	if (emulated())
		return "";
	const std::string &path = config().devices.front();
	// An mdev names its type; a PCI function its (vfio-pci or variant) driver.
	std::string type = link_name(path + "/mdev_type");
	return type.empty() ? link_name(path + "/driver") : type;
}

bool foreign_driver_is_pci()
{
	return !emulated() && link_name(config().devices.front() + "/mdev_type").empty();
}

std::string foreign_label() { return "target " + foreign_driver() + " (foreign)"; }

std::string describe_targets()
{
	if (emulated())
		return "target: vfio_mig_emu instances created by the suite (" + backend_name(config().backend) +
		       " backend)\n";
	std::string s;
	for (std::size_t i = 0; i < config().devices.size(); i++) {
		const Instance &in = pool(Target{}, static_cast<int>(i));
		s += std::string(i == 0 ? "source" : "destination") + " " + config().devices[i] + " (" +
		     foreign_driver() + ", " + backend_name(in.dev.backend()) + " backend): " + in.caps.describe() +
		     "\n";
	}
	return s;
}

std::string Target::name() const { return profile ? profile_name(*profile) : "target"; }

std::vector<Target> target_params()
{
	if (!emulated())
		return {Target{}};
	std::vector<Target> v;
	for (Profile p : kAllProfiles)
		v.push_back(Target{p});
	return v;
}

Device open_device(const std::string &sysfs_path) { return Device::open_sysfs(sysfs_path, config().backend); }

bool pool_has(const Target &t, int slot)
{
	if (t.profile)
		return true;
	return slot >= 0 && static_cast<std::size_t>(slot) < config().devices.size();
}

Instance &pool(const Target &t, int slot)
{
	auto &m = instances();
	auto &ptr = m[key_of(t, slot)];
	if (!ptr) {
		if (t.profile) {
			MdevInstance mdev = MdevInstance::create(*t.profile);
			std::string path = mdev.sysfs_path();
			ptr = open_instance(std::move(mdev), path);
		} else {
			if (!pool_has(t, slot))
				throw_error(ENODEV, "no foreign device for slot " + std::to_string(slot) + " (" +
							    std::to_string(config().devices.size()) + " --device given)");
			ptr = open_instance(std::nullopt, config().devices[static_cast<std::size_t>(slot)]);
		}
	}
	return *ptr;
}

void release_instance(const Target &t, int slot) { instances().erase(key_of(t, slot)); }

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
std::string target_param_name(const ::testing::TestParamInfo<Target> &info) { return info.param.name(); }

const std::vector<KnownIssue> &foreign_known_issues()
{
	static const std::vector<KnownIssue> issues = [] {
		if (emulated())
			return std::vector<KnownIssue>{};
		const char *env = std::getenv("VFIOMIG_KNOWN_ISSUES");
		std::string dir = env && *env ? env : find_fixture("known-issues", VFIOMIG_SOURCE_DIR);
		return load_known_issues(dir, foreign_driver());
	}();
	return issues;
}

Profile ProfileFixture::profile() const
{
	Target t = target();
	if (!t.profile)
		throw Error(EINVAL, "the test used the emulated profile on " + foreign_label() +
					    ": it lacks a REQUIRE_EMU");
	return *t.profile;
}

std::string ProfileFixture::target_label() const
{
	Target t = target();
	return t.profile ? "profile " + profile_name(*t.profile) : foreign_label();
}

void ProfileFixture::SetUp()
{
	const Target t = target();
	if (t.profile && !emulated())
		GTEST_SKIP() << foreign_label() << ": needs vfio_mig_emu's " << profile_name(*t.profile)
			     << " profile";
	if (t.profile && !module_loaded())
		GTEST_SKIP() << "vfio_mig_emu is not loaded (" << mdev_parent_path() << " absent)";
	// The module offers only the profiles the kernel's vfio core can drive
	// (none with PRE_COPY before the core knew PRE_COPY, as on Linux 6.1).
	if (t.profile && !std::filesystem::exists(mdev_type_path(*t.profile)))
		GTEST_SKIP() << "profile " << profile_name(*t.profile) << " not offered by the module ("
			     << mdev_type_path(*t.profile) << " absent: the vfio core lacks its states)";
	try {
		src_ = &pool(t, 0);
	} catch (const Error &e) {
		FAIL() << "cannot open the " << target_label() << " instance: " << e.what();
	}
	ASSERT_OK(src_->dev.try_reset());
	if (t.profile) {
		ASSERT_EQ(src_->flags, profile_mig_flags(*t.profile))
			<< "migration flags " << mig_flags_name(src_->flags) << " differ from the uAPI header's "
			<< mig_flags_name(profile_mig_flags(*t.profile));
		// What the profile promises beyond the flags is asserted, not
		// discovered: a module that broke MIG_DATA_SIZE or the
		// PRECOPY_INFOv2 opt-in must fail here, not skip the tests
		// that PROBE would have let run.
		const bool precopy = (profile_mig_flags(*t.profile) & VFIO_MIGRATION_PRE_COPY) != 0;
		ASSERT_TRUE(src_->caps.data_size)
			<< "vfio_mig_emu offers VFIO_DEVICE_FEATURE_MIG_DATA_SIZE on every profile; PROBE found "
			<< src_->caps.describe();
		ASSERT_EQ(src_->caps.precopy_info_v2, precopy)
			<< "vfio_mig_emu offers VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 exactly on the profiles with "
			   "PRE_COPY; PROBE found "
			<< src_->caps.describe();
	} else {
		ASSERT_NE(src_->flags, 0u) << target_label() << " is not migratable: " << src_->caps.describe();
		// "at least VFIO_MIGRATION_STOP_COPY must be set" (uAPI).
		ASSERT_TRUE(src_->flags & VFIO_MIGRATION_STOP_COPY)
			<< target_label() << " offers migration without STOP_COPY: " << src_->caps.describe();
		// A known deviation: collect the test's failures instead of
		// reporting them; TearDown sorts them into the expected symptom
		// and everything else.
		const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
		xfail_issues_ = known_issues_of(foreign_known_issues(),
						known_issue_key(info->test_suite_name(), info->name()));
		if (!xfail_issues_.empty()) {
			xfail_results_ = std::make_unique<::testing::TestPartResultArray>();
			xfail_reporter_ = std::make_shared<::testing::ScopedFakeTestPartResultReporter>(
				::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD,
				xfail_results_.get());
		}
	}
}

void ProfileFixture::TearDown()
{
	if (!xfail_reporter_)
		return;
	xfail_reporter_.reset(); // restores the real reporter
	const KnownIssue *seen = nullptr;
	std::string seen_failure, skip;
	bool skipped = false, other = false;
	for (int i = 0; i < xfail_results_->size(); i++) {
		const auto &r = xfail_results_->GetTestPartResult(i);
		std::string at = std::string(r.file_name() ? r.file_name() : "?") + ":" + std::to_string(r.line_number());
		if (r.skipped()) {
			if (!skipped)
				skip = r.message();
			skipped = true;
			continue;
		}
		if (!r.failed())
			continue;
		const KnownIssue *match = nullptr;
		for (const KnownIssue *k : xfail_issues_) {
			if (std::string_view(r.message()).find(k->symptom) != std::string_view::npos)
				match = k;
		}
		if (match && !seen) {
			seen = match;
			seen_failure = at + ": " + r.message();
		}
		if (!match) {
			// Only the listed symptom is expected: anything else the
			// test finds is judged as usual.
			other = true;
			ADD_FAILURE_AT(r.file_name() ? r.file_name() : "?", r.line_number())
				<< r.message() << "\n(a failure of a test with a known issue of " << foreign_driver()
				<< ", but not its symptom \"" << xfail_issues_.front()->symptom << "\" ("
				<< xfail_issues_.front()->source << "))";
		}
	}
	if (other)
		return;
	if (seen)
		GTEST_SKIP() << "known issue of " << foreign_driver() << " (expected failure, " << seen->source
			     << "): " << seen->reason << "\n  failed as expected: " << seen_failure;
	if (skipped)
		GTEST_SKIP() << skip;
	ADD_FAILURE() << "known issue of " << foreign_driver() << " did not reproduce (" << xfail_issues_.front()->reason
		      << "): remove it from " << xfail_issues_.front()->source;
}

Device &ProfileFixture::dst()
{
	if (!dst_) {
		dst_ = &pool(target(), 1);
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
