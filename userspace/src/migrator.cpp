#include "vfiomig/migrator.hpp"
#include "vfiomig/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <thread>

#include "vfiomig/pump.hpp"

namespace vfiomig {

std::string ack_mode_name(AckMode m)
{
	return m == AckMode::Legacy ? "legacy" : "per-device";
}

// ---- SwitchoverGate --------------------------------------------------------

SwitchoverGate::SwitchoverGate(std::size_t devices, AckMode mode, bool legacy_waits_for_reinit)
	: mode_(mode), devs_(devices), legacy_waits_for_reinit_(legacy_waits_for_reinit)
{
	for (std::size_t i = 0; i < devs_.size(); i++)
		devs_[i].label = "device " + std::to_string(i);
}

void SwitchoverGate::observe(std::size_t dev, const PrecopyObservation &o)
{
	Dev &d = devs_.at(dev);
	bool reinit = o.v2 && (o.flags & VFIO_PRECOPY_INFO_REINIT);
	if (reinit) {
		// New initial data: any value, replacing what was pending.
		d.reinits++;
		d.initial_left = o.initial_bytes;
		if (mode_ == AckMode::PerDevice && d.acked) {
			d.acked = false;
			d.ack_requests++;
			if (decided_)
				fail_late_request(dev);
		}
	} else if (!d.seen) {
		d.initial_left = o.initial_bytes;
	} else {
		// initial_bytes only decreases without REINIT.
		if (o.initial_bytes > d.initial_left)
			d.growth++;
		d.initial_left = std::min(d.initial_left, o.initial_bytes);
	}
	d.seen = true;
	maybe_ack(dev);
}

void SwitchoverGate::loaded(std::size_t dev, std::uint64_t bytes)
{
	Dev &d = devs_.at(dev);
	if (!d.seen)
		return;
	d.initial_left -= std::min(d.initial_left, bytes);
	maybe_ack(dev);
}

void SwitchoverGate::fail_late_request(std::size_t dev)
{
	Dev &d = devs_.at(dev);
	if (d.late)
		return;
	d.late = true;
	late_.push_back(dev);
	if (late_message_ == LateAckMessage::FirstDevice) {
		if (late_.size() == 1)
			failure_ = "switchover-ack: " + d.label +
				   " reported VFIO_PRECOPY_INFO_REINIT after the switchover decision "
				   "(vCPUs stopped): it requests a new switchover-ack, and the migration "
				   "cannot go back to precopy";
		return;
	}
	// QEMU 11.1's migration core fails the migration with
	//   "Switchover ACK was requested by %u devices during switchover"
	// (the series' "migration: Fail migration if switchover-ack is
	// requested after switchover decision"; the final save_query_pending
	// at switchover collects the devices' requests, trace
	// qemu_savevm_query_pending ... collected switchover ack pending).
	// Its wording first, then the devices' names as the detail.
	std::string names;
	for (std::size_t i : late_)
		names += (names.empty() ? "" : ", ") + devs_[i].label;
	failure_ = "switchover-ack: Switchover ACK was requested by " + std::to_string(late_.size()) +
		   " devices during switchover (" + names +
		   ": VFIO_PRECOPY_INFO_REINIT after the switchover decision, vCPUs stopped; the "
		   "migration cannot go back to precopy)";
}

void SwitchoverGate::drained(std::size_t dev)
{
	Dev &d = devs_.at(dev);
	if (!d.seen)
		return;
	d.initial_left = 0;
	maybe_ack(dev);
}

void SwitchoverGate::exempt(std::size_t dev)
{
	Dev &d = devs_.at(dev);
	d.exempt = true;
	d.seen = true;
	d.initial_left = 0;
	d.acked = true;
	d.ack_requests = 0;
	maybe_ack(dev);
}

void SwitchoverGate::maybe_ack(std::size_t dev)
{
	Dev &d = devs_.at(dev);
	if (mode_ == AckMode::PerDevice) {
		if (!d.exempt && !d.acked && loaded_initial(d) && !decided_) {
			d.acked = true;
			d.acks++;
			acks_sent_++;
		}
		return;
	}
	if (legacy_acked_)
		return;
	for (const Dev &x : devs_)
		if (!loaded_initial(x))
			return;
	legacy_acked_ = true;
	acks_sent_ = 1;
	for (Dev &x : devs_)
		if (!x.exempt)
			x.acks = 1;
}

void SwitchoverGate::decide()
{
	decided_ = true;
}

bool SwitchoverGate::acked(std::size_t dev) const
{
	return mode_ == AckMode::Legacy ? legacy_acked_ : devs_.at(dev).acked;
}

bool SwitchoverGate::ready() const
{
	return why_not_ready().empty();
}

std::string SwitchoverGate::why_not_ready() const
{
	if (failure_)
		return *failure_;
	std::string why;
	auto add = [&why](const std::string &s) { why += (why.empty() ? "" : "; ") + s; };
	for (const Dev &d : devs_) {
		if (!d.seen)
			add(d.label + ": no precopy query yet");
		else if (!loaded_initial(d) && !(mode_ == AckMode::Legacy && legacy_acked_ && !legacy_waits_for_reinit_))
			add(d.label + ": " + std::to_string(d.initial_left) + " initial bytes not loaded");
		else if (mode_ == AckMode::PerDevice && !d.acked)
			add(d.label + ": switchover-ack pending");
	}
	if (mode_ == AckMode::Legacy && !legacy_acked_ && why.empty())
		add("switchover-ack pending");
	return why;
}

std::optional<std::uint64_t> plausible_size(std::uint64_t reported)
{
	if (reported > kMaxPlausibleSize)
		return std::nullopt;
	return reported;
}

double expected_ms(std::uint64_t bytes, double bytes_per_s)
{
	if (bytes == 0)
		return 0;
	if (!(bytes_per_s > 0))
		return std::numeric_limits<double>::infinity();
	return static_cast<double>(bytes) * 1000.0 / bytes_per_s;
}

bool final_query_applies(const MigratorOptions &opt, bool precopy, bool p2p)
{
	if (!opt.final_query || !precopy)
		return false;
	if (opt.final_query_every_device)
		return true;
	return opt.ack == AckMode::PerDevice && p2p;
}

std::vector<std::string> switchover_phases(const MigratorOptions &opt)
{
	if (opt.final_query_after_p2p)
		return {"quiesce", "final-query", "stop-copy", "run"};
	return {"final-query", "quiesce", "stop-copy", "run"};
}

bool MigrationReport::digests_match() const
{
	if (devices.empty())
		return false;
	for (const DeviceReport &d : devices)
		if (!d.src_digest || !d.dst_digest || *d.src_digest != *d.dst_digest)
			return false;
	return true;
}

// ---- Migrator --------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b)
{
	return std::chrono::duration<double, std::milli>(b - a).count();
}

std::uint64_t sat_add(std::uint64_t a, std::uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/// One source/destination pair during a migration.
struct Slot {
	Device *src = nullptr;
	Device *dst = nullptr;
	std::uint64_t sflags = 0, dflags = 0;
	bool precopy = false;
	bool v2 = false;
	DataFd out; ///< saving
	DataFd in;  ///< resuming
	bool final_query = false; ///< gets the final query (final_query_applies())
	std::optional<PrecopyObservation> final_obs;
	std::string error;
	Clock::time_point t_stop_copy, t_loaded, t_running;
	DeviceReport *rep = nullptr;
};

/// Precopy bandwidth over transfers that carried no initial data (whose
/// destination load cost says nothing about the link), else over all.
struct Bandwidth {
	std::uint64_t bytes = 0, bytes_all = 0;
	double s = 0, s_all = 0;
	void add(std::uint64_t b, double secs, bool initial)
	{
		bytes_all += b;
		s_all += secs;
		if (!initial) {
			bytes += b;
			s += secs;
		}
	}
	double value() const
	{
		if (bytes > 0 && s > 0)
			return static_cast<double>(bytes) / s;
		if (bytes_all > 0 && s_all > 0)
			return static_cast<double>(bytes_all) / s_all;
		return 0;
	}
};

void check_set(Device &dev, State to)
{
	dev.set_state(to);
}

} // namespace

Migrator::Migrator(std::vector<MigrationPair> pairs, MigratorOptions opt)
	: pairs_(std::move(pairs)), opt_(std::move(opt)), opt_in_(pairs_.size())
{
	// QEMU 11.1 opts in when it sets a device up for migration, on both
	// sides (vfio_migration_init()); the earlier behaviour waits for run().
	if (!opt_.precopy_v2 || opt_.precopy_v2_per_run_source_only)
		return;
	try {
		for (std::size_t i = 0; i < pairs_.size(); i++)
			opt_in(i, false);
	} catch (const std::exception &e) {
		setup_error_ = e.what();
	}
}

/// PRECOPY_INFOv2 for pair i's devices with PRE_COPY; ENOTTY (refused)
/// leaves a device v1, any other error throws.
void Migrator::opt_in(std::size_t i, bool source_only)
{
	auto one = [](Device *d) {
		if (!d || !(d->migration_flags() & kMigPreCopy))
			return false;
		Status r = d->try_precopy_v2_opt_in();
		if (!r.ok() && r.err() != ENOTTY)
			r.value();
		return r.ok();
	};
	opt_in_[i].src = one(pairs_[i].src);
	if (!source_only)
		opt_in_[i].dst = one(pairs_[i].dst);
}

MigrationReport Migrator::run()
{
	MigrationReport rep;
	rep.ack = opt_.ack;
	rep.parallel = opt_.parallel;
	const std::size_t n = pairs_.size();
	rep.devices.resize(n);
	std::vector<Slot> slots(n);
	SwitchoverGate gate(n, opt_.ack, opt_.legacy_ack_waits_for_reinit);
	if (opt_.late_ack_names_first_device)
		gate.set_late_ack_message(SwitchoverGate::LateAckMessage::FirstDevice);
	Bandwidth bw;
	std::vector<std::uint8_t> buf(64 * 1024); // never sized from a report
	std::atomic<bool> failed{false};
	std::mutex err_mu;
	std::string first_error;
	auto fail = [&](const std::string &why) {
		std::lock_guard lk(err_mu);
		if (first_error.empty())
			first_error = why;
		failed = true;
	};

	try {
		if (n == 0)
			throw Error(EINVAL, "Migrator: no device pairs");
		if (!setup_error_.empty())
			throw Error(EIO, "Migrator: PRECOPY_INFOv2 opt-in at set-up: " + setup_error_);
		// ---- set-up: opt-in, destination sessions, PRE_COPY ----
		for (std::size_t i = 0; i < n; i++) {
			Slot &s = slots[i];
			s.src = pairs_[i].src;
			s.dst = pairs_[i].dst;
			s.rep = &rep.devices[i];
			s.rep->label = s.src->label();
			gate.set_label(i, s.src->label());
			s.sflags = s.src->migration_flags();
			s.dflags = s.dst->migration_flags();
			s.precopy = (s.sflags & kMigPreCopy) != 0;
			if (opt_.precopy_v2 && opt_.precopy_v2_per_run_source_only)
				opt_in(i, true);
			s.v2 = s.precopy && opt_in_[i].src;
			s.final_query = final_query_applies(opt_, s.precopy, (s.sflags & kMigP2P) != 0);
			s.rep->precopy = s.precopy;
			s.rep->v2 = s.v2;
			s.rep->dst_v2 = opt_in_[i].dst;
			s.rep->final_query = s.final_query;
			if (s.src->get_state() != State::Running)
				throw Error(EINVAL, "Migrator: source " + s.src->label() + " is " +
							    state_name(s.src->get_state()) + ", not RUNNING");
			if (s.dst->get_state() != State::Running && s.dst->get_state() != State::Stop)
				s.dst->reset();
			MigrationSession in = s.dst->set_state(State::Resuming);
			if (!in.has_data())
				throw Error(EIO, "Migrator: no data fd for RESUMING on " + s.dst->label());
			s.in = std::move(in.data);
			if (s.precopy) {
				MigrationSession out = s.src->set_state(State::PreCopy);
				if (!out.has_data())
					throw Error(EIO, "Migrator: no data fd for PRE_COPY on " + s.src->label());
				s.out = std::move(out.data);
			} else {
				gate.exempt(i);
			}
		}

		// Reads what device i has (up to `want` bytes, or ENOMSG) into
		// its destination; true when the source ran dry.
		auto transfer = [&](std::size_t i, std::uint64_t want) {
			Slot &s = slots[i];
			std::uint64_t got = 0;
			bool initial = gate.initial_left(i) > 0;
			auto t0 = Clock::now();
			bool dry = false;
			while (got < want) {
				std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), want - got));
				auto r = s.out.read(std::span(buf.data(), len));
				if (!r && r.err() == ENOMSG) {
					dry = true;
					break;
				}
				if (*r == 0) { // value() throws on other errors
					dry = true;
					break;
				}
				write_all(s.in, ByteSpan(buf.data(), *r)).value();
				got += *r;
				gate.loaded(i, *r);
			}
			bw.add(got, std::chrono::duration<double>(Clock::now() - t0).count(), initial);
			s.rep->precopy_bytes += got;
			if (dry)
				gate.drained(i);
		};

		// ---- precopy iterations ----
		auto t_pre = Clock::now();
		double limit_ms = std::chrono::duration<double, std::milli>(opt_.downtime_limit).count();
		std::vector<std::uint64_t> sizes(n);
		std::vector<bool> implausible(n);
		for (unsigned iter = 0;; iter++) {
			if (iter >= opt_.max_iterations)
				throw Error(ETIMEDOUT, "Migrator: precopy did not converge in " +
							       std::to_string(opt_.max_iterations) +
							       " iterations: " +
							       (gate.ready() ? "expected downtime above the limit"
									     : gate.why_not_ready()));
			if (opt_.before_iteration)
				opt_.before_iteration(iter);
			std::vector<PrecopyObservation> obs(n);
			for (std::size_t i = 0; i < n; i++) {
				if (!slots[i].precopy)
					continue;
				PrecopyInfo pi = slots[i].out.precopy_info(0).value();
				obs[i] = {pi.flags, pi.initial_bytes, pi.dirty_bytes, slots[i].v2};
				gate.observe(i, obs[i]);
			}
			if (gate.failure())
				throw Error(EPROTO, *gate.failure());
			// Expected downtime if we switched over now.
			double exp_total = 0;
			for (std::size_t i = 0; i < n; i++) {
				std::uint64_t reported = slots[i].src->stop_copy_size();
				auto sz = plausible_size(reported);
				sizes[i] = reported;
				implausible[i] = !sz;
				double e = sz ? expected_ms(*sz, bw.value()) : 0;
				exp_total = opt_.parallel ? std::max(exp_total, e) : exp_total + e;
			}
			rep.iterations = iter + 1;
			if (iter + 1 >= opt_.min_iterations && gate.ready() && exp_total <= limit_ms)
				break;
			for (std::size_t i = 0; i < n; i++) {
				if (!slots[i].precopy)
					continue;
				std::uint64_t want = sat_add(obs[i].initial_bytes, obs[i].dirty_bytes);
				want = std::min(want, opt_.iteration_budget);
				if (want > 0)
					transfer(i, want);
			}
			if (opt_.iteration_interval.count() > 0)
				std::this_thread::sleep_for(opt_.iteration_interval);
		}
		rep.precopy_ms = ms_between(t_pre, Clock::now());
		rep.bandwidth_bytes_per_s = bw.value();
		for (std::size_t i = 0; i < n; i++) {
			DeviceReport &d = rep.devices[i];
			d.reported_stop_copy_size = sizes[i];
			d.size_implausible = implausible[i];
			d.expected_ms = implausible[i] ? 0 : expected_ms(sizes[i], rep.bandwidth_bytes_per_s);
			rep.expected_downtime_ms = opt_.parallel ? std::max(rep.expected_downtime_ms, d.expected_ms)
								 : rep.expected_downtime_ms + d.expected_ms;
		}
		gate.decide();
		if (opt_.after_decision)
			opt_.after_decision();

		// ---- switchover: the vCPUs stop now ----
		// The phases run on the parallel state-change engine: one thread
		// per device pair with a barrier between phases (or sequentially).
		// Source PRE_COPY -> PRE_COPY_P2P for all before any STOP_COPY;
		// destination RUNNING_P2P for all before any RUNNING.
		auto t_stop = Clock::now();
		auto phase_quiesce = [&](Slot &s) {
			if (!(s.sflags & kMigP2P))
				return;
			State from = s.precopy ? State::PreCopy : State::Running;
			set_state_step(*s.src, from, s.precopy ? State::PreCopyP2P : State::RunningP2P);
		};
		// Before PRE_COPY -> PRE_COPY_P2P by default, as QEMU 11.1.
		auto phase_final_query = [&](Slot &s) {
			if (!s.final_query)
				return;
			PrecopyInfo pi = s.out.precopy_info(0).value();
			s.final_obs = PrecopyObservation{pi.flags, pi.initial_bytes, pi.dirty_bytes, s.v2};
		};
		auto judge = [&]() -> std::optional<std::string> {
			for (std::size_t i = 0; i < n; i++)
				if (slots[i].final_obs)
					gate.observe(i, *slots[i].final_obs);
			if (gate.failure())
				return *gate.failure();
			return std::nullopt;
		};
		auto phase_copy = [&](Slot &s) {
			s.t_stop_copy = Clock::now();
			State from = (s.sflags & kMigP2P) ? (s.precopy ? State::PreCopyP2P : State::RunningP2P)
							  : (s.precopy ? State::PreCopy : State::Running);
			MigrationSession sc = set_state_step(*s.src, from, State::StopCopy);
			if (!s.precopy) {
				if (!sc.has_data())
					throw Error(EIO, "Migrator: no data fd for STOP_COPY on " + s.src->label());
				s.out = std::move(sc.data);
			}
			std::vector<std::uint8_t> b(64 * 1024);
			for (;;) {
				auto r = s.out.read(b);
				if (*r == 0)
					break;
				write_all(s.in, ByteSpan(b.data(), *r)).value();
				s.rep->stop_copy_bytes += *r;
			}
			set_state_step(*s.dst, State::Resuming, (s.dflags & kMigP2P) ? State::RunningP2P : State::Stop);
			s.t_loaded = Clock::now();
			// The stopped source's digest; its cost is not charged to the
			// device's downtime (only to the barrier wait after it).
			if (opt_.digest)
				s.rep->src_digest = opt_.digest(*s.src);
		};
		auto phase_run = [&](Slot &s) {
			set_state_step(*s.dst, (s.dflags & kMigP2P) ? State::RunningP2P : State::Stop, State::Running);
			s.t_running = Clock::now();
			check_set(*s.src, State::Stop);
			if (opt_.digest)
				s.rep->dst_digest = opt_.digest(*s.dst);
		};

		std::vector<std::string> labels;
		for (Slot &s : slots)
			labels.push_back(s.src->label() + "->" + s.dst->label());
		auto each = [&](auto fn) { return [&slots, fn](std::size_t i) { fn(slots[i]); }; };
		PhaseEngine engine(n, opt_.parallel ? ExecMode::Parallel : ExecMode::Sequential, labels);
		std::vector<Phase> phases;
		for (const std::string &name : switchover_phases(opt_)) {
			if (name == "quiesce")
				phases.push_back({name, each(phase_quiesce), {}});
			else if (name == "final-query")
				phases.push_back({name, each(phase_final_query), judge});
			else if (name == "stop-copy")
				phases.push_back({name, each(phase_copy), {}});
			else
				phases.push_back({name, each(phase_run), {}});
		}
		EngineReport er = engine.run(phases);
		if (!er.ok)
			fail(er.error->device < n ? er.error->describe() : er.error->what);
		if (failed)
			throw Error(EPROTO, first_error);

		for (std::size_t i = 0; i < n; i++) {
			Slot &s = slots[i];
			DeviceReport &d = rep.devices[i];
			d.stop_copy_ms = ms_between(s.t_stop_copy, s.t_loaded);
			d.downtime_ms = ms_between(t_stop, s.t_loaded);
			d.running_ms = ms_between(t_stop, s.t_running);
			rep.downtime_ms = std::max(rep.downtime_ms, d.running_ms);
		}
		rep.ok = true;
	} catch (const std::exception &e) {
		rep.ok = false;
		rep.error = e.what();
		// Give the VM back its devices: sources RUNNING, destinations reset.
		for (Slot &s : slots) {
			s.out.close();
			s.in.close();
			if (s.src)
				(void)s.src->try_set_state(State::Running);
			if (s.dst)
				(void)s.dst->try_reset();
		}
	}
	for (std::size_t i = 0; i < n; i++) {
		DeviceReport &d = rep.devices[i];
		d.reinits = gate.reinits(i);
		d.ack_requests = gate.ack_requests(i);
		d.acks = gate.acks(i);
		d.late_ack_request = gate.late_ack_request(i);
	}
	rep.acks_sent = gate.acks_sent();
	return rep;
}

} // namespace vfiomig
