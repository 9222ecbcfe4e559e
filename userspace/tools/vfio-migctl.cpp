// vfio-migctl: manual sessions with vfio_mig_emu devices.
//   list, show, stats, create, remove, state, knob, fault, workload,
//   counters, watch: the control plane (migctl_control.cpp)
//   demo   migrate a workload between two fresh instances and report
//   dump   decode and validate a saved migration stream
//   reinit-table  v1 vs v2 (REINIT) downtime experiment (migctl_reinit.cpp)
//   qemu-downtime the same experiment run by QEMU 11.1 (migctl_qemu.cpp)
//   qemu-stop-window  the downtime the emulator adds, by memory size (same)
//   bench  latency, parallel speedup, data path, memory (migctl_bench.cpp)
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fcntl.h>
#include <unistd.h>
#include <cstdio>
#include <iostream>

#include "migctl_control.hpp"
#include "migctl_bench.hpp"
#include "migctl_qemu.hpp"
#include "migctl_reinit.hpp"
#include "vfio_mig_emu.h"
#include "vfiomig/emu.hpp"
#include "vfiomig/mdev.hpp"
#include "vfiomig/pump.hpp"
#include "vfiomig/stream.hpp"
#include "vfiomig/vfio.hpp"

using namespace vfiomig;
using Clock = std::chrono::steady_clock;

namespace {

std::string hex32(std::uint32_t v)
{
	char buf[16];
	std::snprintf(buf, sizeof(buf), "0x%08x", v);
	return buf;
}

double ms_since(Clock::time_point t0)
{
	return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Phase {
	std::string name;
	std::uint64_t bytes = 0;
	double ms = 0;
};

struct DemoOptions {
	std::string profile = "full";
	std::uint32_t pages = 64;
	std::uint32_t resources = 2;
	std::uint32_t precopy_rounds = 2;
	bool json = false;
	std::string save_stream;
};

int cmd_dump(const std::string &path, bool json)
{
	std::string text = read_file(path);
	Bytes data(text.begin(), text.end());
	ParsedStream p = parse_stream(data);
	std::string why;
	auto model = p.ok() ? DeviceModel::load(p, &why) : std::nullopt;
	bool digest_ok = model && end_digest(p) == model->digest();
	if (json) {
		nlohmann::json j;
		j["file"] = path;
		j["bytes"] = data.size();
		j["valid"] = p.ok();
		j["error"] = p.ok() ? "" : p.describe();
		for (const Record &r : p.records)
			j["records"].push_back({{"offset", r.offset}, {"seq", r.seq}, {"type", record_type_name(r.type)},
						{"length", r.length}, {"arg", r.arg}});
		if (model)
			j["model_digest"] = hex32(model->digest());
		if (auto d = end_digest(p))
			j["end_digest"] = hex32(*d);
		j["digest_ok"] = digest_ok;
		std::cout << j.dump(2) << "\n";
	} else {
		std::printf("%s: %zu bytes\n%s", path.c_str(), data.size(), dump_stream(p).c_str());
		if (model)
			std::printf("digest: END %s, rebuilt from the records %s: %s\n",
				    end_digest(p) ? hex32(*end_digest(p)).c_str() : "-", hex32(model->digest()).c_str(),
				    digest_ok ? "match" : "MISMATCH");
		else if (p.ok())
			std::printf("cannot rebuild the device state: %s\n", why.c_str());
	}
	return p.ok() && digest_ok ? 0 : 1;
}

int cmd_demo(const DemoOptions &o)
{
	auto prof = parse_profile(o.profile);
	if (!prof) {
		std::fprintf(stderr, "vfio-migctl: unknown profile '%s' (full, stopcopy, p2p, precopy)\n", o.profile.c_str());
		return 2;
	}
	if (!module_loaded()) {
		std::fprintf(stderr, "vfio-migctl: vfio_mig_emu is not loaded (%s absent)\n", mdev_parent_path().c_str());
		return 1;
	}
	MdevInstance src_mdev = MdevInstance::create(*prof);
	MdevInstance dst_mdev = MdevInstance::create(*prof);
	std::vector<Phase> phases;
	std::uint32_t src_digest = 0, dst_digest = 0;
	std::uint64_t estimate = 0, stop_copy_bytes = 0;
	std::uint64_t flags = 0;
	std::string stream_check;
	Bytes saved;
	{
		Device src = Device::open_sysfs(src_mdev.sysfs_path());
		Device dst = Device::open_sysfs(dst_mdev.sysfs_path());
		flags = src.migration_flags();

		auto t = Clock::now();
		emu::scribble(src, 1, o.pages).value();
		emu::reconfigure(src, o.resources).value();
		phases.push_back({"workload", 0, ms_since(t)});

		Bytes capture;
		MigrationSession out;
		auto in = dst.set_state(State::Resuming);
		if (flags & kMigPreCopy) {
			for (std::uint32_t round = 0; round < o.precopy_rounds; round++) {
				t = Clock::now();
				if (round == 0)
					out = src.set_state(State::PreCopy);
				else
					emu::run_workload(src, o.pages / 4 + 1).value(); // guest keeps running
				auto p = pump(out.data, &in.data, {PumpUntil::NoMsg, {}, {}, &capture}).value();
				phases.push_back({"pre_copy#" + std::to_string(round + 1), p.bytes_read, ms_since(t)});
			}
		}
		t = Clock::now();
		if (!out.has_data())
			src.set_state(State::Stop);
		estimate = src.stop_copy_size();
		auto sc = src.set_state(State::StopCopy);
		if (!out.has_data())
			out = std::move(sc);
		auto p = pump(out.data, &in.data, {PumpUntil::Eof, {}, {}, &capture}).value();
		src_digest = emu::digest(src);
		stop_copy_bytes = p.bytes_read;
		phases.push_back({"stop_copy", p.bytes_read, ms_since(t)});

		t = Clock::now();
		dst.set_state(State::Running);
		dst_digest = emu::digest(dst);
		phases.push_back({"resume", 0, ms_since(t)});
		src.set_state(State::Stop);

		ParsedStream parsed = parse_stream(capture, {static_cast<std::uint32_t>(*prof), emu::mem_size(src)});
		stream_check = parsed.describe();
		saved = std::move(capture);
	}
	bool match = src_digest == dst_digest;
	if (!o.save_stream.empty()) {
		Fd f = Fd::open(o.save_stream, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (::write(f.get(), saved.data(), saved.size()) != static_cast<ssize_t>(saved.size()))
			throw_error(errno ? errno : EIO, "write(" + o.save_stream + ")");
	}

	if (o.json) {
		nlohmann::json j;
		j["profile"] = profile_name(*prof);
		j["migration_flags"] = mig_flags_name(flags);
		j["source"] = src_mdev.uuid();
		j["destination"] = dst_mdev.uuid();
		for (const Phase &ph : phases)
			j["phases"].push_back({{"name", ph.name}, {"bytes", ph.bytes}, {"ms", ph.ms}});
		j["stop_copy_estimate_bytes"] = estimate;
		j["stop_copy_bytes"] = stop_copy_bytes;
		j["stream"] = stream_check;
		j["digest"] = {{"source", hex32(src_digest)}, {"destination", hex32(dst_digest)}};
		j["verdict"] = match ? "match" : "mismatch";
		std::cout << j.dump(2) << "\n";
	} else {
		std::printf("vfio-migctl demo: profile %s (%s)\n", profile_name(*prof).c_str(), mig_flags_name(flags).c_str());
		std::printf("  source      %s\n  destination %s\n", src_mdev.uuid().c_str(), dst_mdev.uuid().c_str());
		std::printf("  %-12s %12s %10s\n", "phase", "bytes", "ms");
		for (const Phase &ph : phases)
			std::printf("  %-12s %12llu %10.2f\n", ph.name.c_str(), static_cast<unsigned long long>(ph.bytes), ph.ms);
		std::printf("  stop-copy size announced %llu, produced %llu\n", static_cast<unsigned long long>(estimate),
			    static_cast<unsigned long long>(stop_copy_bytes));
		std::printf("  stream: %s\n", stream_check.c_str());
		std::printf("  digest source %s destination %s\n", hex32(src_digest).c_str(), hex32(dst_digest).c_str());
		std::printf("  verdict: %s\n", match ? "MATCH (migration preserved the device state)" : "MISMATCH");
	}
	return match ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	CLI::App app{"vfio-migctl: drive vfio_mig_emu devices by hand (VFIO migration uAPI v2)"};
	app.require_subcommand(1);

	migctl::ControlCommands control(app); // list, show, state, knob, fault, watch, ...
	migctl::ReinitTable reinit_table(app); // reinit-table
	migctl::QemuDowntime qemu_downtime(app); // qemu-downtime
	migctl::QemuExpectedDowntime qemu_expected(app); // qemu-expected-downtime
	migctl::QemuStopWindow qemu_stop_window(app); // qemu-stop-window
	migctl::Bench bench(app);              // bench
	DemoOptions demo_opt;
	auto *demo = app.add_subcommand("demo", "Create two instances of a profile, run a workload, migrate it "
						"(PRE_COPY -> STOP_COPY -> RESUMING when supported) and report bytes "
						"and time per phase, digests and a verdict");
	demo->add_option("-p,--profile", demo_opt.profile, "Profile: full, stopcopy, p2p, precopy")
		->capture_default_str();
	demo->add_option("--pages", demo_opt.pages, "Pages the workload dirties")->capture_default_str();
	demo->add_option("--resources", demo_opt.resources, "Resources the workload creates")->capture_default_str();
	demo->add_option("--precopy-rounds", demo_opt.precopy_rounds, "PRE_COPY iterations")->capture_default_str();
	demo->add_flag("--json", demo_opt.json, "Print the report as JSON");
	demo->add_option("--save-stream", demo_opt.save_stream, "Write the migration stream to this file");

	std::string dump_path;
	bool dump_json = false;
	auto *dump = app.add_subcommand("dump", "Decode and validate a saved migration stream (v1.0): one line "
						"per record, the first error, and the digest rebuilt from the records");
	dump->add_option("file", dump_path, "Stream file (e.g. from demo --save-stream)")->required();
	dump->add_flag("--json", dump_json, "Print as JSON");

	CLI11_PARSE(app, argc, argv);
	if (int rc = 0; control.run(&rc))
		return rc;
	if (int rc = 0; qemu_downtime.run(&rc))
		return rc;
	if (int rc = 0; qemu_stop_window.run(&rc))
		return rc;
	if (int rc = 0; qemu_expected.run(&rc))
		return rc;
	if (int rc = 0; reinit_table.run(&rc))
		return rc;
	if (int rc = 0; bench.run(&rc))
		return rc;
	try {
		if (*demo)
			return cmd_demo(demo_opt);
		if (*dump)
			return cmd_dump(dump_path, dump_json);
	} catch (const std::exception &e) {
		std::fprintf(stderr, "vfio-migctl: %s\n", e.what());
		return 1;
	}
	return 0;
}
