// The QEMU lane: builds, a source/destination VM pair, digests.
#include <vfiomig/qemu_lane.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

namespace vfiomig::qemu {

const Builds &lane_builds()
{
	static const Builds builds = builds_from_env();
	return builds;
}

std::string lane_missing_reason()
{
	const auto &b = lane_builds();
	std::string why = "no QEMU for the QEMU lane (scripts/fetch-qemu fetches 10.0 and 11.1; "
			  "VFIOMIG_QEMU_10/VFIOMIG_QEMU_11 or QEMU name a build)";
	for (const auto &m : b.missing)
		why += "; " + m;
	return why;
}

const Build *lane_build(const std::string &label)
{
	for (const auto &b : lane_builds().found)
		if (b.label == label)
			return &b;
	return nullptr;
}

namespace {

std::string results_root()
{
	const char *r = std::getenv("VM_RESULTS");
	return fmt::format("{}/qemu", r && *r ? r : "/tmp/vfiomig-results");
}

} // namespace

QemuLane::QemuLane(control::Client &ctl, const Build &build, const std::string &name, const LaneOptions &opt)
{
	dir_ = fmt::format("{}/{}", opt.results_root.empty() ? results_root() : opt.results_root, name);
	std::filesystem::remove_all(dir_);
	std::filesystem::create_directories(dir_);
	char tmpl[] = "/tmp/vfiomig-qemu-XXXXXX";
	if (!::mkdtemp(tmpl))
		throw_error(errno, "mkdtemp for the QEMU lane's sockets");
	socket_dir_ = tmpl;

	for (Profile p : opt.profiles) {
		LanePair pair{MdevInstance::create(p), MdevInstance::create(p)};
		ctl.set_knobs(pair.src.uuid(), opt.src_knobs);
		ctl.set_knobs(pair.dst.uuid(), opt.dst_knobs);
		device_bytes_ += ctl.device(pair.src.uuid()).mem_size;
		pairs_.push_back(std::move(pair));
	}

	auto config = [&](const std::string &vm, bool incoming) {
		VmConfig cfg;
		cfg.build = build;
		cfg.name = vm;
		cfg.dir = dir_;
		cfg.socket_dir = socket_dir_;
		cfg.incoming = incoming;
		cfg.machine = opt.machine;
		cfg.trace = opt.trace;
		for (size_t i = 0; i < pairs_.size(); i++) {
			const MdevInstance &m = incoming ? pairs_[i].dst : pairs_[i].src;
			cfg.devices.push_back({m.sysfs_path(), fmt::format("vme{}", i)});
		}
		return cfg;
	};
	src_vm_.emplace(Vm::start(config("src", false)));
	dst_config_ = config("dst", true);
	dst_vm_.emplace(Vm::start(dst_config_));

	caps_ = qmp::json::array();
	for (const auto &cap : opt.capabilities)
		caps_.push_back({{"capability", cap}, {"state", true}});
	src_vm_->qmp().execute("migrate-set-capabilities", {{"capabilities", caps_}});
	dst_vm_->qmp().execute("migrate-set-capabilities", {{"capabilities", caps_}});
}

void QemuLane::restart_destination()
{
	dst_vm_->quit(std::chrono::seconds(5));
	dst_vm_.reset();
	VmConfig cfg = dst_config_;
	cfg.name = fmt::format("dst-{}", ++restarts_);
	dst_vm_.emplace(Vm::start(cfg));
	dst_vm_->qmp().execute("migrate-set-capabilities", {{"capabilities", caps_}});
}

QemuLane::~QemuLane()
{
	// QEMUs first: they hold the device fds the instances' removal waits for.
	if (dst_vm_)
		dst_vm_->quit(std::chrono::seconds(5));
	if (src_vm_)
		src_vm_->quit(std::chrono::seconds(5));
	dst_vm_.reset();
	src_vm_.reset();
	pairs_.clear();
	std::error_code ec;
	std::filesystem::remove_all(socket_dir_, ec);
}

void QemuLane::set_parameters(const qmp::json &params)
{
	src_vm_->qmp().execute("migrate-set-parameters", params);
}

void QemuLane::start_migration()
{
	std::string uri = fmt::format("unix:{}/migration.sock", socket_dir_);
	dst_vm_->qmp().execute("migrate-incoming", {{"uri", uri}});
	src_vm_->qmp().execute("migrate", {{"uri", uri}});
}

qmp::json QemuLane::wait_final(std::chrono::milliseconds timeout, bool converge, std::chrono::milliseconds patience)
{
	auto start = std::chrono::steady_clock::now();
	auto deadline = start + timeout;
	qmp::json info;
	for (;;) {
		info = src_vm_->qmp().execute("query-migrate");
		std::string status = info.value("status", "");
		if (status == "completed" || status == "failed" || status == "cancelled")
			return info;
		if (converge && !raised_limit_ms_ && status == "active" &&
		    std::chrono::steady_clock::now() - start >= patience && info.contains("expected-downtime")) {
			auto params = src_vm_->qmp().execute("query-migrate-parameters");
			std::int64_t limit = params.value("downtime-limit", 300);
			std::int64_t expected = info["expected-downtime"].get<std::int64_t>();
			// QEMU 10.0 leaves device state out of expected-downtime
			// but counts its stop-copy size in what is pending: with
			// little RAM moving (a starved TCG host) it never converges
			// while reporting a small estimate.  A management layer that
			// knows the devices' size and QEMU's throughput estimates
			// the downtime itself.
			double mbps = info.contains("ram") ? info["ram"].value("mbps", 0.0) : 0.0;
			if (mbps > 0)
				expected = std::max<std::int64_t>(
					expected, static_cast<std::int64_t>(static_cast<double>(device_bytes_) * 8.0 / (mbps * 1e3)));
			if (expected > limit) {
				raised_limit_ms_ = std::min<std::int64_t>(2 * expected, 60000);
				set_parameters({{"downtime-limit", *raised_limit_ms_}});
			}
		}
		if (std::chrono::steady_clock::now() >= deadline)
			return info;
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
	}
}

std::vector<TraceLine> QemuLane::src_trace(std::string_view event) const
{
	return read_trace(src_vm_->config().log_path(), event);
}

std::vector<TraceLine> QemuLane::dst_trace(std::string_view event) const
{
	return read_trace(dst_vm_->config().log_path(), event);
}

std::string QemuLane::describe() const
{
	std::string s;
	for (size_t i = 0; i < pairs_.size(); i++)
		s += fmt::format("vme{} profile {} src {} dst {}\n", i, profile_name(pairs_[i].src.profile()),
				 pairs_[i].src.uuid(), pairs_[i].dst.uuid());
	return s;
}

} // namespace vfiomig::qemu
