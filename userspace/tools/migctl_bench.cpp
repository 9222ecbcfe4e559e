// vfio-migctl bench (see migctl_bench.hpp). Every section runs on fresh
// full-profile instances it creates and removes.
#include "migctl_bench.hpp"

#include <liburing.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "vfio_mig_emu.h"
#include "vfiomig/control.hpp"
#include "vfiomig/mdev.hpp"
#include "vfiomig/parallel.hpp"
#include "vfiomig/pump.hpp"
#include "vfiomig/vfio.hpp"

using namespace vfiomig;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace migctl {
namespace {

double ms_since(Clock::time_point t0)
{
	return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double quantile(std::vector<double> v, double q)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	std::size_t i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
	return v[std::min(i, v.size() - 1)];
}

/// A fresh instance, optionally resized before its fd is opened.
struct Inst {
	MdevInstance mdev;
	std::unique_ptr<Device> dev;
};

Inst make(control::Client &nl, std::optional<std::uint64_t> mem_size = std::nullopt)
{
	MdevInstance m = MdevInstance::create(Profile::Full);
	if (mem_size) {
		control::Knobs k;
		k.mem_size = *mem_size;
		nl.set_knobs(m.uuid(), k);
	}
	auto d = std::make_unique<Device>(Device::open_sysfs(m.sysfs_path()));
	return Inst{std::move(m), std::move(d)};
}

/// /proc/meminfo field in bytes.
std::int64_t meminfo(const std::string &field)
{
	std::ifstream in("/proc/meminfo");
	std::string line;
	while (std::getline(in, line)) {
		if (line.rfind(field + ":", 0) == 0) {
			std::istringstream is(line.substr(field.size() + 1));
			std::int64_t kb = 0;
			is >> kb;
			return kb * 1024;
		}
	}
	return 0;
}

std::string mib(double bytes)
{
	char b[32];
	std::snprintf(b, sizeof(b), "%.2f", bytes / (1024.0 * 1024.0));
	return b;
}

// ---- per-arc latency ------------------------------------------------------

json bench_arcs(unsigned iters)
{
	auto nl = control::Client::open();
	Inst in = make(nl);
	Device &d = *in.dev;
	const std::uint64_t flags = d.migration_flags();
	// A valid stream for RESUMING -> STOP.
	d.reset();
	Bytes stream;
	{
		auto s = d.set_state(State::StopCopy);
		PumpOptions po;
		po.capture = &stream;
		pump(s.data, nullptr, po).value();
	}
	json out = json::array();
	std::printf("Per-arc transition latency (full profile, %u samples each, SET MIG_DEVICE_STATE ioctl only)\n",
		    iters);
	std::printf("  %-28s %10s %10s\n", "arc", "median us", "p99 us");
	for (State a : kAllStates) {
		for (State b : kAllStates) {
			if (a == b || !is_valid_state(a, flags) || !is_valid_state(b, flags) ||
			    next_state(a, static_cast<std::uint32_t>(b), flags) != b)
				continue;
			std::vector<double> us;
			for (unsigned k = 0; k < iters; k++) {
				d.reset();
				MigrationSession held;
				if (a != State::Running)
					held = d.set_state(a);
				if (a == State::Resuming)
					write_all(held.data, stream).value();
				auto t0 = Clock::now();
				MigrationSession s = d.set_state(b);
				us.push_back(ms_since(t0) * 1000.0);
			}
			std::string arc = state_name(a) + "->" + state_name(b);
			double med = quantile(us, 0.5), p99 = quantile(us, 0.99);
			std::printf("  %-28s %10.1f %10.1f\n", arc.c_str(), med, p99);
			out.push_back({{"arc", arc}, {"median_us", med}, {"p99_us", p99}, {"samples", us.size()}});
		}
	}
	d.reset();
	return out;
}

// ---- parallel speedup -----------------------------------------------------

json bench_parallel(unsigned delay_ms, unsigned reps)
{
	auto nl = control::Client::open();
	std::vector<Inst> insts;
	for (int i = 0; i < 8; i++) {
		insts.push_back(make(nl));
		control::Knobs k;
		for (auto [f, t] : {std::pair{State::PreCopy, State::PreCopyP2P}, {State::PreCopyP2P, State::StopCopy}})
			k.arc_delays.push_back({static_cast<std::uint32_t>(f), static_cast<std::uint32_t>(t), delay_ms * 1000});
		nl.set_knobs(insts.back().mdev.uuid(), k);
	}
	json out = json::array();
	std::printf("\nParallel switchover speedup (source PRE_COPY -> PRE_COPY_P2P -> STOP_COPY, %u ms per arc, "
		    "median of %u)\n",
		    delay_ms, reps);
	// Overheads per device: sequential, one device's two arcs beyond their
	// delays; parallel, the time beyond a perfect overlap (one device's
	// sequential time) per device: threads woken one after another on the
	// guest's vCPUs enter their ioctl late.
	std::printf("  %3s %14s %14s %9s %7s %8s %7s %14s %14s\n", "N", "sequential ms", "parallel ms", "speedup",
		    "ideal", "0.9*N", "target", "seq µs/device", "par µs/device");
	bool all_met = true;
	for (std::size_t n : {1, 2, 4, 8}) {
		std::vector<Device *> devs;
		for (std::size_t i = 0; i < n; i++)
			devs.push_back(insts[i].dev.get());
		std::vector<double> seq, par;
		for (unsigned r = 0; r < reps; r++) {
			for (ExecMode m : {ExecMode::Sequential, ExecMode::Parallel}) {
				for (Device *d : devs)
					d->reset();
				auto pre = change_states(devs, {State::PreCopy}, ExecMode::Sequential);
				if (!pre.report.ok)
					throw Error(pre.report.error->err, pre.report.error->describe());
				auto res = change_states(devs, kSourceSwitchover, m);
				if (!res.report.ok)
					throw Error(res.report.error->err, res.report.error->describe());
				(m == ExecMode::Sequential ? seq : par).push_back(res.report.total_ms);
			}
		}
		double s = quantile(seq, 0.5), p = quantile(par, 0.5), sp = s / p;
		bool met = sp >= 0.9 * static_cast<double>(n);
		all_met &= met;
		const double one = s / static_cast<double>(n);
		const double seq_us = (one - 2.0 * delay_ms) * 1000.0;
		const double par_us = (p - one) / static_cast<double>(n) * 1000.0;
		std::printf("%s", fmt::format("  {:3} {:14.1f} {:14.1f} {:9.2f} {:7} {:8.1f} {:>7} {:14.0f} {:14.0f}\n", n,
					      s, p, sp, n, 0.9 * static_cast<double>(n), met ? "met" : "NOT met",
					      seq_us, par_us)
					  .c_str());
		out.push_back({{"n", n}, {"sequential_ms", s}, {"parallel_ms", p}, {"speedup", sp}, {"ideal", n},
			       {"target_met", met}, {"sequential_overhead_us_per_device", seq_us},
			       {"parallel_added_us_per_device", par_us}});
	}
	for (Inst &i : insts)
		i.dev->reset();
	return json{{"delay_ms", delay_ms}, {"rows", out}, {"target_met", all_met}};
}

// ---- data path ------------------------------------------------------------

/// io_uring with `qd` registered buffers of `bs` bytes, linked so the
/// requests run in stream order (the fd is a stream: unordered reads
/// would scramble it). Reads to EOF (`write` false) or writes `data`.
std::uint64_t uring_io(int fd, bool write, unsigned qd, std::size_t bs, ByteSpan data)
{
	struct io_uring ring;
	check_neg_errno(io_uring_queue_init(qd * 2, &ring, 0), "io_uring_queue_init");
	std::unique_ptr<struct io_uring, void (*)(struct io_uring *)> guard(&ring, io_uring_queue_exit);
	std::vector<std::vector<std::uint8_t>> bufs(qd, std::vector<std::uint8_t>(bs));
	std::vector<struct iovec> iov(qd);
	for (unsigned i = 0; i < qd; i++)
		iov[i] = {bufs[i].data(), bs};
	check_neg_errno(io_uring_register_buffers(&ring, iov.data(), qd), "io_uring_register_buffers");
	std::uint64_t pos = 0;
	for (;;) {
		unsigned n = 0;
		std::vector<std::size_t> len(qd, 0);
		struct io_uring_sqe *last = nullptr;
		for (; n < qd; n++) {
			std::size_t l = bs;
			if (write) {
				std::uint64_t off = pos + n * bs;
				if (off >= data.size())
					break;
				l = std::min<std::size_t>(bs, data.size() - off);
				std::memcpy(bufs[n].data(), data.data() + off, l);
			}
			len[n] = l;
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			if (write)
				io_uring_prep_write_fixed(sqe, fd, bufs[n].data(), static_cast<unsigned>(l), -1ull,
							  static_cast<int>(n));
			else
				io_uring_prep_read_fixed(sqe, fd, bufs[n].data(), static_cast<unsigned>(l), -1ull,
							 static_cast<int>(n));
			sqe->user_data = n;
			sqe->flags |= IOSQE_IO_LINK;
			last = sqe;
		}
		if (n == 0)
			return pos;
		last->flags &= static_cast<std::uint8_t>(~IOSQE_IO_LINK); // the chain ends here
		check_neg_errno(io_uring_submit_and_wait(&ring, n), "io_uring_submit_and_wait");
		std::vector<int> res(n, 0);
		for (unsigned got = 0; got < n; got++) {
			struct io_uring_cqe *cqe;
			check_neg_errno(io_uring_wait_cqe(&ring, &cqe), "io_uring_wait_cqe");
			res[cqe->user_data] = cqe->res;
			io_uring_cqe_seen(&ring, cqe);
		}
		bool eof = false;
		for (unsigned i = 0; i < n; i++) {
			if (res[i] == -ECANCELED)
				break;
			if (res[i] < 0)
				throw Error(-res[i], std::string("io_uring ") + (write ? "write" : "read") + " of the data fd");
			pos += static_cast<std::uint64_t>(res[i]);
			if (res[i] == 0 && !write) {
				eof = true;
				break;
			}
			if (static_cast<std::size_t>(res[i]) < len[i])
				break; // short: the rest of the chain was cancelled
		}
		if (eof)
			return pos;
	}
}

json bench_data(unsigned data_mib, unsigned reps)
{
	auto nl = control::Client::open();
	const std::uint64_t mem = static_cast<std::uint64_t>(data_mib) << 20;
	Inst in = make(nl, mem);
	Device &d = *in.dev;
	{ // every page written: the stream carries all of it
		std::vector<std::uint8_t> chunk(1 << 20);
		for (std::size_t i = 0; i < chunk.size(); i++)
			chunk[i] = static_cast<std::uint8_t>(i * 7 + 3);
		for (std::uint64_t off = 0; off < mem; off += chunk.size())
			d.region_write(VFIO_PCI_BAR2_REGION_INDEX, off, chunk);
	}
	Bytes stream;
	auto saving = [&](auto &&fn) { // RUNNING -> STOP_COPY, fn(fd), -> RUNNING
		auto s = d.set_state(State::StopCopy);
		fn(s.data);
		s.data.close();
		d.set_state(State::Running);
	};
	saving([&](DataFd &fd) {
		PumpOptions po;
		po.capture = &stream;
		po.read_sizes = {1 << 20};
		pump(fd, nullptr, po).value();
	});
	const double bytes = static_cast<double>(stream.size());

	// The ceiling: memcpy of the same bytes, 1 MiB at a time, into a
	// buffer as large as the stream.
	std::vector<double> mc;
	{
		Bytes dst(stream.size());
		for (unsigned r = 0; r < reps; r++) {
			auto t0 = Clock::now();
			for (std::size_t off = 0; off < stream.size(); off += 1 << 20)
				std::memcpy(dst.data() + off, stream.data() + off,
					    std::min<std::size_t>(1 << 20, stream.size() - off));
			mc.push_back(ms_since(t0));
			if (std::memcmp(dst.data(), stream.data(), 64) != 0)
				throw Error(EIO, "memcpy check");
		}
	}
	const double memcpy_ms = quantile(mc, 0.5);
	auto gbps = [&](double ms) { return bytes / (ms / 1000.0) / 1e9; };
	json rows = json::array();
	auto row = [&](const std::string &path, const std::string &how, double ms) {
		double ratio = memcpy_ms / ms;
		std::printf("  %-8s %-22s %10.1f %10.3f %10.3f\n", path.c_str(), how.c_str(), ms, gbps(ms), ratio);
		rows.push_back({{"path", path}, {"method", how}, {"ms", ms}, {"gb_per_s", gbps(ms)}, {"x_memcpy", ratio}});
		return ratio;
	};
	std::printf("\nData path (%s MiB of stream from %u MiB of written device memory, median of %u)\n",
		    mib(bytes).c_str(), data_mib, reps);
	std::printf("  %-8s %-22s %10s %10s %10s\n", "path", "method", "ms", "GB/s", "x memcpy");
	row("memcpy", "1 MiB chunks", memcpy_ms);

	// Reference: the same bytes read() from and write() to a tmpfs file
	// (page cache <-> user copy), i.e. what any kernel read and write
	// path costs on this CPU: issue 15's targets are ratios to these.
	double tmpfs_read = 0, tmpfs_write = 0;
	{
		const std::string path = "/tmp/vfio-migctl-bench.ref";
		{
			std::ofstream out(path, std::ios::binary | std::ios::trunc);
			out.write(reinterpret_cast<const char *>(stream.data()), static_cast<std::streamsize>(stream.size()));
			if (!out)
				throw Error(EIO, "writing " + path);
		}
		std::vector<double> t, w;
		std::vector<std::uint8_t> rb(1 << 20);
		for (unsigned r = 0; r < reps; r++) {
			Fd f = Fd::open(path, O_RDONLY);
			auto t0 = Clock::now();
			while (::read(f.get(), rb.data(), rb.size()) > 0) {
			}
			t.push_back(ms_since(t0));
		}
		for (unsigned r = 0; r < reps; r++) {
			Fd f = Fd::open(path, O_WRONLY | O_TRUNC);
			auto t0 = Clock::now();
			for (std::size_t off = 0; off < stream.size(); off += rb.size()) {
				std::size_t n = std::min(rb.size(), stream.size() - off);
				if (::write(f.get(), stream.data() + off, n) != static_cast<ssize_t>(n))
					throw Error(errno ? errno : EIO, "write() to " + path);
			}
			w.push_back(ms_since(t0));
		}
		::unlink(path.c_str());
		tmpfs_read = row("ref", "tmpfs read() 1024 KiB", quantile(t, 0.5));
		tmpfs_write = row("ref", "tmpfs write() 1024 KiB", quantile(w, 0.5));
	}

	const std::size_t sizes[] = {4096, 64 << 10, 256 << 10, 1 << 20};
	double read_1m = 0;
	std::vector<std::uint8_t> buf(1 << 20);
	for (std::size_t bs : sizes) {
		std::vector<double> t;
		for (unsigned r = 0; r < reps; r++)
			saving([&](DataFd &fd) {
				std::uint64_t got = 0;
				auto t0 = Clock::now();
				for (;;) {
					std::size_t n = fd.read({buf.data(), bs}).value();
					if (!n)
						break;
					got += n;
				}
				t.push_back(ms_since(t0));
				if (got != stream.size())
					throw Error(EIO, "read() got " + std::to_string(got) + " bytes");
			});
		double ratio = row("save", "read() " + std::to_string(bs >> 10) + " KiB", quantile(t, 0.5));
		if (bs == (1 << 20))
			read_1m = ratio;
	}
	std::vector<std::pair<unsigned, double>> uring;
	for (unsigned qd : {1u, 2u, 4u, 8u, 16u}) {
		std::vector<double> t;
		for (unsigned r = 0; r < reps; r++)
			saving([&](DataFd &fd) {
				auto t0 = Clock::now();
				std::uint64_t got = uring_io(fd.fd().get(), false, qd, 1 << 20, {});
				t.push_back(ms_since(t0));
				if (got != stream.size())
					throw Error(EIO, "io_uring read got " + std::to_string(got) + " bytes");
			});
		uring.push_back({qd, row("save", "io_uring 1 MiB QD " + std::to_string(qd), quantile(t, 0.5))});
	}
	// Resuming: write() the stream back; RESUMING -> STOP must accept it.
	auto resuming = [&](auto &&fn) {
		d.set_state(State::Stop);
		auto s = d.set_state(State::Resuming);
		fn(s.data);
		d.set_state(State::Stop);
		d.set_state(State::Running);
	};
	double write_1m = 0;
	for (std::size_t bs : sizes) {
		std::vector<double> t;
		for (unsigned r = 0; r < reps; r++)
			resuming([&](DataFd &fd) {
				auto t0 = Clock::now();
				write_all(fd, stream, {bs}).value();
				t.push_back(ms_since(t0));
			});
		double ratio = row("resume", "write() " + std::to_string(bs >> 10) + " KiB", quantile(t, 0.5));
		if (bs == (1 << 20))
			write_1m = ratio;
	}
	for (unsigned qd : {1u, 4u, 16u}) {
		std::vector<double> t;
		for (unsigned r = 0; r < reps; r++)
			resuming([&](DataFd &fd) {
				auto t0 = Clock::now();
				std::uint64_t put = uring_io(fd.fd().get(), true, qd, 1 << 20, stream);
				t.push_back(ms_since(t0));
				if (put != stream.size())
					throw Error(EIO, "io_uring write put " + std::to_string(put) + " bytes");
			});
		row("resume", "io_uring 1 MiB QD " + std::to_string(qd), quantile(t, 0.5));
	}
	// x memcpy ratios of the same bytes: their quotient is the speed
	// relative to tmpfs.
	const double read_x_tmpfs = tmpfs_read > 0 ? read_1m / tmpfs_read : 0;
	const double write_x_tmpfs = tmpfs_write > 0 ? write_1m / tmpfs_write : 0;
	bool read_met = read_x_tmpfs >= 0.8, write_met = write_x_tmpfs >= 0.8;
	bool uring_met = true;
	for (auto [qd, r] : uring)
		if (qd >= 4 && r < read_1m)
			uring_met = false;
	std::printf("  target read() 1 MiB >= 0.8x tmpfs read(): %.3f -> %s\n", read_x_tmpfs,
		    read_met ? "met" : "NOT met");
	std::printf("  target write() 1 MiB >= 0.8x tmpfs write(): %.3f -> %s\n", write_x_tmpfs,
		    write_met ? "met" : "NOT met");
	std::printf("  target io_uring QD>=4 >= read() 1 MiB: %s\n", uring_met ? "met" : "NOT met");
	return json{{"stream_bytes", stream.size()},
		    {"rows", rows},
		    {"read_1m_x_memcpy", read_1m},
		    {"write_1m_x_memcpy", write_1m},
		    {"read_1m_x_tmpfs", read_x_tmpfs},
		    {"write_1m_x_tmpfs", write_x_tmpfs},
		    {"read_target_met", read_met},
		    {"write_target_met", write_met},
		    {"uring_target_met", uring_met}};
}

// ---- memory ---------------------------------------------------------------

json bench_memory(const std::vector<unsigned> &sizes_mib, unsigned write_cap_mib)
{
	auto nl = control::Client::open();
	json rows = json::array();
	std::printf("\nKernel memory per device (module's own accounting via DEV_GET A_KMEM; meminfo = MemFree drop)\n");
	std::printf("  %6s | %10s %10s | %8s %10s %10s %9s | %10s %10s\n", "mem", "idle kmem", "idle Δmem", "written",
		    "kmem", "Δmem", "kmem/MiB", "STOP_COPY+", "Δmem+");
	std::printf("  %6s | %10s %10s | %8s %10s %10s %9s | %10s %10s\n", "MiB", "KiB", "KiB", "MiB", "MiB", "MiB",
		    "KiB", "kmem KiB", "KiB");
	for (unsigned sz : sizes_mib) {
		const std::uint64_t mem = static_cast<std::uint64_t>(sz) << 20;
		auto kmem = [&](const std::string &uuid) { return nl.device(uuid).kmem.value_or(control::Kmem{}); };
		std::int64_t free0 = meminfo("MemFree");
		Inst in = make(nl, mem);
		Device &d = *in.dev;
		control::Kmem idle = kmem(in.mdev.uuid());
		std::int64_t idle_delta = free0 - meminfo("MemFree");

		const std::uint64_t written = std::min<std::uint64_t>(mem, static_cast<std::uint64_t>(write_cap_mib) << 20);
		std::vector<std::uint8_t> chunk(1 << 20, 0x5a);
		std::int64_t free1 = meminfo("MemFree");
		for (std::uint64_t off = 0; off < written; off += chunk.size())
			d.region_write(VFIO_PCI_BAR2_REGION_INDEX, off, chunk);
		control::Kmem full = kmem(in.mdev.uuid());
		std::int64_t write_delta = free1 - meminfo("MemFree");

		// STOP_COPY: half the stream read, the rest still in device memory.
		std::int64_t free2 = meminfo("MemFree");
		auto s = d.set_state(State::StopCopy);
		std::vector<std::uint8_t> buf(1 << 20);
		std::uint64_t got = 0;
		while (got < written / 2) {
			std::size_t n = s.data.read(buf).value();
			if (!n)
				break;
			got += n;
		}
		control::Kmem sc = kmem(in.mdev.uuid());
		std::int64_t sc_delta = free2 - meminfo("MemFree");
		while (s.data.read(buf).value()) {
		}
		std::int64_t sc_extra = static_cast<std::int64_t>(sc.total()) - static_cast<std::int64_t>(full.total());
		double per_mib = static_cast<double>(full.total() - idle.total()) / (static_cast<double>(written) / (1 << 20));
		std::printf("  %6u | %10.1f %10.1f | %8s %10s %10s %9.1f | %10.1f %10.1f\n", sz, idle.total() / 1024.0,
			    static_cast<double>(idle_delta) / 1024.0, mib(static_cast<double>(written)).c_str(),
			    mib(static_cast<double>(full.total())).c_str(), mib(static_cast<double>(write_delta)).c_str(),
			    per_mib / 1024.0, static_cast<double>(sc_extra) / 1024.0,
			    static_cast<double>(sc_delta) / 1024.0);
		rows.push_back({{"mem_mib", sz},
				{"idle", {{"pages", idle.pages}, {"bitmaps", idle.bitmaps}, {"buffers", idle.buffers},
					  {"resources", idle.resources}, {"total", idle.total()}}},
				{"idle_memfree_drop", idle_delta},
				{"written_bytes", written},
				{"written", {{"pages", full.pages}, {"bitmaps", full.bitmaps}, {"total", full.total()}}},
				{"written_memfree_drop", write_delta},
				{"kmem_bytes_per_written_mib", per_mib},
				{"stop_copy", {{"pages", sc.pages}, {"bitmaps", sc.bitmaps}, {"buffers", sc.buffers},
					       {"total", sc.total()}}},
				{"stop_copy_extra_kmem", sc_extra},
				{"stop_copy_memfree_drop", sc_delta}});
	}
	return json{{"rows", rows}};
}

// ---- control plane under an unprivileged query loop -----------------------

/// Latency samples of `fn`, every `period`, until `stop`.
template <typename F>
std::vector<double> sample_until(std::atomic<bool> &stop, std::chrono::milliseconds period, F &&fn)
{
	std::vector<double> ms;
	while (!stop) {
		auto t0 = Clock::now();
		fn();
		ms.push_back(ms_since(t0));
		std::this_thread::sleep_for(period);
	}
	return ms;
}

json latency_json(const std::vector<double> &ms)
{
	return {{"samples", ms.size()}, {"p50_ms", quantile(ms, 0.5)}, {"p99_ms", quantile(ms, 0.99)},
		{"max_ms", ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end())}};
}

/// In a forked child without CAP_NET_ADMIN (any local user), DEV_GET in a
/// loop (the dump, then each large device) for `seconds`; returns the
/// child's pid and a pipe that yields the number of requests made.
std::pair<pid_t, int> start_unprivileged_devget(const std::vector<std::string> &uuids, double seconds)
{
	int pipefd[2];
	if (::pipe(pipefd) != 0)
		throw_error(errno, "pipe for the DEV_GET loop");
	pid_t pid = ::fork();
	if (pid < 0)
		throw_error(errno, "fork for the DEV_GET loop");
	if (pid == 0) {
		::close(pipefd[0]);
		__user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
		__user_cap_data_struct data[2] = {};
		::syscall(SYS_capget, &hdr, data);
		for (auto &d : data)
			d.effective = d.permitted = d.inheritable = 0;
		long n = -1;
		if (::syscall(SYS_capset, &hdr, data) == 0) {
			n = 0;
			try {
				auto c = control::Client::open();
				auto end = Clock::now() + std::chrono::duration<double>(seconds);
				while (Clock::now() < end) {
					c.devices();
					n++;
					for (const auto &u : uuids) {
						c.device(u);
						n++;
					}
				}
			} catch (const std::exception &) {
				n = -2;
			}
		}
		(void)!::write(pipefd[1], &n, sizeof(n));
		::_exit(0);
	}
	::close(pipefd[1]);
	return {pid, pipefd[0]};
}

/// GETFAMILY and another device's I/O, quiet and while an unprivileged
/// process runs DEV_GET on large devices.  The bound: neither may wait
/// for the queries (a held-up GETFAMILY waits a whole DEV_GET, which on
/// the old module digested every page of a device under genl_mutex).
json bench_control(unsigned devices, unsigned mem_mib, double seconds, double bound_ms)
{
	auto nl = control::Client::open();
	std::vector<Inst> big;
	std::vector<std::string> uuids;
	for (unsigned i = 0; i < devices; i++) {
		big.push_back(make(nl, static_cast<std::uint64_t>(mem_mib) << 20));
		uuids.push_back(big.back().mdev.uuid());
	}
	Inst victim = make(nl);
	std::vector<std::uint8_t> page(VFIO_MIG_EMU_PAGE_SIZE, 0x5a);
	victim.dev->region_write(VFIO_PCI_BAR2_REGION_INDEX, 0, page);

	auto measure = [&](bool loaded) {
		std::atomic<bool> stop{false};
		pid_t pid = -1;
		int rd = -1;
		if (loaded)
			std::tie(pid, rd) = start_unprivileged_devget(uuids, seconds);
		std::vector<double> fam, io;
		std::thread io_thread([&] {
			io = sample_until(stop, std::chrono::milliseconds(5), [&] {
				victim.dev->region_read(VFIO_PCI_BAR2_REGION_INDEX, 0, page);
			});
		});
		std::thread fam_thread([&] {
			fam = sample_until(stop, std::chrono::milliseconds(20), [] { control::Client::open(); });
		});
		std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
		stop = true;
		io_thread.join();
		fam_thread.join();
		long requests = 0;
		if (loaded) {
			if (::read(rd, &requests, sizeof(requests)) != sizeof(requests))
				requests = -3;
			::close(rd);
			int status = 0;
			::waitpid(pid, &status, 0);
		}
		return json{{"getfamily", latency_json(fam)}, {"other_device_io", latency_json(io)},
			    {"devget_requests", requests}};
	};

	std::printf("\nControl plane while an unprivileged process loops DEV_GET (dump + %u device(s) of %u MiB), "
		    "%.1f s each\n", devices, mem_mib, seconds);
	json quiet = measure(false), loaded = measure(true);
	std::printf("  %-34s | %8s %8s %8s | %8s %8s %8s\n", "", "quiet", "", "", "DEV_GET", "loop", "");
	std::printf("  %-34s | %8s %8s %8s | %8s %8s %8s\n", "ms", "p50", "p99", "max", "p50", "p99", "max");
	auto row = [&](const char *name, const char *key) {
		std::printf("  %-34s | %8.2f %8.2f %8.2f | %8.2f %8.2f %8.2f\n", name, quiet[key]["p50_ms"].get<double>(),
			    quiet[key]["p99_ms"].get<double>(), quiet[key]["max_ms"].get<double>(),
			    loaded[key]["p50_ms"].get<double>(), loaded[key]["p99_ms"].get<double>(),
			    loaded[key]["max_ms"].get<double>());
	};
	row("CTRL_CMD_GETFAMILY (new socket)", "getfamily");
	row("other device BAR2 4 KiB read", "other_device_io");
	double worst = std::max(loaded["getfamily"]["max_ms"].get<double>(),
				loaded["other_device_io"]["max_ms"].get<double>());
	bool met = worst <= bound_ms;
	std::printf("  DEV_GET requests by the unprivileged loop: %ld\n", loaded["devget_requests"].get<long>());
	std::printf("  bound: held up at most %.0f ms under the loop (worst max %.2f ms): %s\n", bound_ms, worst,
		    met ? "met" : "NOT met");
	return json{{"devices", devices},	     {"mem_mib", mem_mib}, {"seconds", seconds}, {"quiet", quiet},
		    {"devget_loop", loaded}, {"bound_ms", bound_ms}, {"bound_met", met}};
}

} // namespace

Bench::Bench(CLI::App &app)
{
	cmd_ = app.add_subcommand("bench", "Benchmarks: per-arc latency, parallel switchover speedup, data path "
					   "(read/io_uring/write vs memcpy), kernel memory per device, control plane "
					   "under an unprivileged DEV_GET loop");
	cmd_->add_flag("--json", json_, "Also print the results as JSON (last line)");
	cmd_->add_option("--only", only_, "Sections: arcs, parallel, data, memory, control (default all)");
	cmd_->add_option("--iterations", iterations_, "Samples per arc")->capture_default_str();
	cmd_->add_option("--reps", reps_, "Repetitions (median) for parallel and data")->capture_default_str();
	cmd_->add_option("--delay-ms", delay_ms_, "Injected per-arc delay (ARC_DELAY knob)")->capture_default_str();
	cmd_->add_option("--data-mib", data_mib_, "Device memory for the data path")->capture_default_str();
	cmd_->add_option("--mem-mib", mem_mib_, "Device memory sizes for the memory table")->capture_default_str();
	cmd_->add_option("--write-cap-mib", write_cap_mib_, "Most MiB written per device in the memory table")
		->capture_default_str();
	cmd_->add_option("--control-devices", control_devices_, "Large devices the unprivileged DEV_GET loop queries")
		->capture_default_str();
	cmd_->add_option("--control-mib", control_mib_, "Their device memory")->capture_default_str();
	cmd_->add_option("--control-seconds", control_seconds_, "Length of each control measurement")
		->capture_default_str();
	cmd_->add_option("--control-bound-ms", control_bound_ms_,
			 "Most GETFAMILY or another device's read may be held up by the loop")
		->capture_default_str();
}

bool Bench::run(int *rc)
{
	if (!*cmd_)
		return false;
	std::setvbuf(stdout, nullptr, _IOLBF, 0); // progress shows through tee
	auto want = [&](const char *s) { return only_.empty() || std::find(only_.begin(), only_.end(), s) != only_.end(); };
	json j;
	try {
		auto t0 = Clock::now();
		if (want("arcs"))
			j["arcs"] = bench_arcs(iterations_);
		if (want("parallel"))
			j["parallel"] = bench_parallel(delay_ms_, reps_);
		if (want("data"))
			j["data"] = bench_data(data_mib_, reps_);
		if (want("memory"))
			j["memory"] = bench_memory(mem_mib_, write_cap_mib_);
		if (want("control"))
			j["control"] = bench_control(control_devices_, control_mib_, control_seconds_,
						     control_bound_ms_);
		j["elapsed_s"] = ms_since(t0) / 1000.0;
		std::printf("\nbench: %.1f s\n", ms_since(t0) / 1000.0);
		if (json_)
			std::cout << j.dump() << "\n";
		*rc = 0;
	} catch (const std::exception &e) {
		std::fprintf(stderr, "vfio-migctl bench: %s\n", e.what());
		*rc = 1;
	}
	return true;
}

} // namespace migctl
