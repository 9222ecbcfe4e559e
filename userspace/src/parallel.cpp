// The parallel state-change engine (see parallel.hpp).
#include "vfiomig/parallel.hpp"

#include <atomic>
#include <barrier>
#include <latch>
#include <mutex>
#include <thread>

namespace vfiomig {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b)
{
	return std::chrono::duration<double, std::milli>(b - a).count();
}

} // namespace

std::string exec_mode_name(ExecMode m)
{
	return m == ExecMode::Parallel ? "parallel" : "sequential";
}

std::string PhaseError::describe() const
{
	std::string s = "device " + label + " phase " + phase;
	if (from && to)
		s += " arc " + state_name(*from) + "->" + state_name(*to);
	if (state_after)
		s += " (now " + state_name(*state_after) + ")";
	return s + ": " + what;
}

MigrationSession set_state_step(Device &dev, State from, State to)
{
	auto r = dev.try_set_state(to);
	if (!r)
		throw ArcError(r.err(), r.describe(), from, to);
	return std::move(*r);
}

PhaseEngine::PhaseEngine(std::size_t n, ExecMode mode, std::vector<std::string> labels)
	: n_(n), mode_(mode), labels_(std::move(labels))
{
	labels_.resize(n_);
	for (std::size_t i = 0; i < n_; i++)
		if (labels_[i].empty())
			labels_[i] = "#" + std::to_string(i);
}

PhaseEngine::PhaseEngine(const std::vector<Device *> &devs, ExecMode mode)
	: n_(devs.size()), mode_(mode), devs_(devs)
{
	for (Device *d : devs_)
		labels_.push_back(d ? d->label() : std::string("?"));
}

EngineReport PhaseEngine::run(const std::vector<Phase> &phases)
{
	EngineReport rep;
	rep.mode = mode_;
	std::mutex err_lock; // protects rep.errors
	std::atomic<bool> abort{false};
	auto t0 = Clock::now();

	// Per phase: device times; the phase's own time is set by complete().
	rep.phases.reserve(phases.size());
	std::size_t current = 0;
	Clock::time_point phase_start = t0;
	auto open_phase = [&](std::size_t k) {
		PhaseTiming t;
		t.name = phases[k].name;
		t.device_ms.assign(n_, 0);
		rep.phases.push_back(std::move(t));
		phase_start = Clock::now();
	};

	auto step = [&](std::size_t k, std::size_t i, PhaseTiming &timing) {
		auto ts = Clock::now();
		try {
			if (phases[k].step)
				phases[k].step(i);
		} catch (const std::exception &e) {
			PhaseError pe;
			pe.device = i;
			pe.label = labels_[i];
			pe.phase = phases[k].name;
			pe.what = e.what();
			if (auto *ae = dynamic_cast<const ArcError *>(&e)) {
				pe.from = ae->from();
				pe.to = ae->to();
			}
			if (auto *ee = dynamic_cast<const Error *>(&e))
				pe.err = ee->err();
			if (i < devs_.size() && devs_[i]) {
				auto g = devs_[i]->try_get_state();
				if (g)
					pe.state_after = *g;
			}
			std::lock_guard lk(err_lock);
			rep.errors.push_back(std::move(pe));
			abort = true;
		}
		timing.device_ms[i] = ms_between(ts, Clock::now());
	};

	// Runs once per phase when every device finished it (noexcept: the
	// barrier's completion); opens the next phase's timing.
	auto complete = [&]() noexcept {
		PhaseTiming &t = rep.phases[current];
		t.ms = ms_between(phase_start, Clock::now());
		if (!abort && phases[current].on_complete) {
			try {
				if (auto why = phases[current].on_complete()) {
					PhaseError pe;
					pe.phase = phases[current].name;
					pe.label = "(all)";
					pe.device = n_;
					pe.what = *why;
					std::lock_guard lk(err_lock);
					rep.errors.push_back(std::move(pe));
					abort = true;
				}
			} catch (const std::exception &e) {
				std::lock_guard lk(err_lock);
				rep.errors.push_back(PhaseError{n_, "(all)", phases[current].name, {}, {}, 0, {}, e.what()});
				abort = true;
			}
		}
		if (!abort)
			rep.phases_completed = current + 1;
		current++;
		if (!abort && current < phases.size())
			open_phase(current);
	};

	if (!phases.empty() && n_ > 0) {
		open_phase(0);
		if (mode_ == ExecMode::Parallel) {
			// Threads are created and parked before the clock starts, as
			// a VMM's switchover threads exist before the vCPUs stop.
			std::barrier sync(static_cast<std::ptrdiff_t>(n_), complete);
			std::latch ready(static_cast<std::ptrdiff_t>(n_)), go(1);
			std::vector<std::jthread> threads;
			threads.reserve(n_);
			for (std::size_t i = 0; i < n_; i++) {
				threads.emplace_back([&, i] {
					ready.count_down();
					go.wait();
					for (std::size_t k = 0; k < phases.size(); k++) {
						// rep.phases[k] was pushed by the previous completion,
						// before this thread passed the barrier.
						step(k, i, rep.phases[k]);
						sync.arrive_and_wait();
						if (abort)
							break;
					}
				});
			}
			ready.wait();
			t0 = Clock::now();
			phase_start = t0;
			go.count_down();
			threads.clear(); // joins
		} else {
			for (std::size_t k = 0; k < phases.size(); k++) {
				for (std::size_t i = 0; i < n_; i++)
					step(k, i, rep.phases[k]);
				complete();
				if (abort)
					break;
			}
		}
	}
	rep.total_ms = ms_between(t0, Clock::now());
	rep.ok = rep.errors.empty();
	if (!rep.ok)
		rep.error = rep.errors.front();
	return rep;
}

StateChangeResult change_states(const std::vector<Device *> &devs, const std::vector<State> &phases,
				ExecMode mode)
{
	StateChangeResult res;
	res.data.resize(devs.size());
	// Each device's state as last seen; only its own thread touches it.
	std::vector<std::optional<State>> cur(devs.size());
	std::vector<Phase> list;
	for (State target : phases) {
		list.push_back(Phase{"->" + state_name(target), [&, target](std::size_t i) {
					     Device &d = *devs[i];
					     if (!cur[i])
						     cur[i] = d.try_get_state().value();
					     if (*cur[i] == target)
						     return;
					     MigrationSession s = set_state_step(d, *cur[i], target);
					     cur[i] = target;
					     if (s.has_data())
						     res.data[i] = std::move(s.data);
				     },
				     {}});
	}
	PhaseEngine eng(devs, mode);
	res.report = eng.run(list);
	return res;
}

} // namespace vfiomig
