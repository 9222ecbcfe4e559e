#include "model.hpp"

#include <array>
#include <bit>
#include <cerrno>

#include "vfio_mig_emu.h"
#include "vfiomig/fd.hpp"

namespace vfiomig::fuzz {

std::string Expect::str() const
{
	std::string s = ok ? "ok" : "";
	for (int e : errnos)
		s += (s.empty() ? "" : " or ") + errno_name(e);
	return s.empty() ? "nothing" : s;
}

bool state_writable(State s)
{
	return s == State::Running || s == State::RunningP2P || s == State::PreCopy || s == State::PreCopyP2P;
}

Expect expect_region(std::uint32_t index, std::uint64_t off, std::uint64_t size, bool write, bool writable,
		     std::uint64_t mem_size, std::uint32_t value)
{
	if (size == 0)
		return Expect::success();
	switch (index) {
	case 7: // VFIO_PCI_CONFIG_REGION_INDEX: every state, any size inside
		if (off >= VFIO_MIG_EMU_CONFIG_SIZE || size > VFIO_MIG_EMU_CONFIG_SIZE - off)
			return Expect::fail(EINVAL);
		return Expect::success();
	case 0: { // BAR0: 4-byte registers
		if (size != 4 || off % 4 || off >= VFIO_MIG_EMU_BAR0_SIZE)
			return Expect::fail(EINVAL);
		if (!write)
			return Expect::success();
		bool scratch = off >= VFIO_MIG_EMU_REG_SCRATCH &&
			       off < VFIO_MIG_EMU_REG_SCRATCH + 4 * VFIO_MIG_EMU_NR_SCRATCH;
		if (!scratch && off != VFIO_MIG_EMU_REG_DIRTY_DOORBELL && off != VFIO_MIG_EMU_REG_RECONFIG_DOORBELL)
			return Expect::fail(EINVAL); // read-only or unimplemented
		if (!writable)
			return Expect::fail(EBUSY);
		if (off == VFIO_MIG_EMU_REG_DIRTY_DOORBELL)
			return value > VFIO_MIG_EMU_MAX_DIRTY_STEPS ? Expect::fail(EINVAL) : Expect::success();
		if (off == VFIO_MIG_EMU_REG_RECONFIG_DOORBELL)
			return value > VFIO_MIG_EMU_MAX_RESOURCES ? Expect::fail(ENOSPC)
								  : Expect::success().or_err(ENOSPC);
		return Expect::success();
	}
	case 2: { // BAR2: device memory, then zeroes up to the power of two
		std::uint64_t bar = std::bit_ceil(mem_size);
		if (off >= bar || size > bar - off)
			return Expect::fail(EINVAL);
		if (write && !writable)
			return Expect::fail(EBUSY);
		return Expect::success();
	}
	default: // size-0 regions and undefined indexes
		return Expect::fail(EINVAL);
	}
}

namespace {

constexpr std::uint32_t kGet = 1u << 16, kSet = 1u << 17, kProbe = 1u << 18;

// include/linux/vfio.h vfio_check_feature(): <0 errno, 0 probe ok, 1 go.
int check_feature(std::uint32_t flags, std::uint32_t payload, std::uint32_t supported, std::uint32_t minsz)
{
	if ((flags & (kGet | kSet)) & ~supported)
		return -EINVAL;
	if (flags & kProbe)
		return 0;
	if (!(flags & (kGet | kSet)))
		return -EINVAL;
	if (payload < minsz)
		return -EINVAL;
	return 1;
}

} // namespace

FeatureExpect expect_feature(std::uint32_t flags, std::uint32_t argsz, std::uint64_t mig_flags)
{
	FeatureExpect fe;
	auto fail = [&](int e) {
		fe.expect = Expect::fail(e);
		return fe;
	};
	if (argsz < 8)
		return fail(EINVAL);
	if (flags & ~(0xffffu | kGet | kSet | kProbe))
		return fail(EINVAL);
	if (!(flags & kProbe) && (flags & kSet) && (flags & kGet))
		return fail(EINVAL);
	std::uint32_t payload = argsz - 8;
	int r;
	switch (flags & 0xffff) {
	case 1: // VFIO_DEVICE_FEATURE_MIGRATION
		r = check_feature(flags, payload, kGet, 8);
		if (r < 0)
			return fail(-r);
		fe.expect = Expect::success();
		fe.out = r == 1 ? FeatureOut::MigrationFlags : FeatureOut::None;
		return fe;
	case 2: // MIG_DEVICE_STATE (GET or PROBE only from here)
		r = check_feature(flags, payload, kGet | kSet, 8);
		if (r < 0)
			return fail(-r);
		fe.expect = Expect::success();
		fe.out = r == 1 ? FeatureOut::DeviceState : FeatureOut::None;
		return fe;
	case 3: case 4: case 5: // DMA logging: the device has no log ops
		return fail(ENOTTY);
	case 9: // MIG_DATA_SIZE
		r = check_feature(flags, payload, kGet, 8);
		if (r < 0)
			return fail(-r);
		fe.expect = Expect::success();
		fe.out = r == 1 ? FeatureOut::DataSize : FeatureOut::None;
		fe.data_size_site = r == 1;
		return fe;
	case 12: // PRECOPY_INFOv2: the module's device_feature on 6.12
		if (!(mig_flags & kMigPreCopy))
			return fail(ENOTTY);
		r = check_feature(flags, payload, kSet, 0);
		if (r < 0)
			return fail(-r);
		fe.expect = Expect::success();
		fe.opts_in = r == 1;
		return fe;
	default:
		return fail(ENOTTY);
	}
}

ArcEffect arc_effect(State from, State to)
{
	if (arc_starts_session(from, to))
		return to == State::Resuming ? ArcEffect::StartResuming : ArcEffect::StartSaving;
	if ((from == State::PreCopy || from == State::PreCopyP2P) && to == State::StopCopy)
		return ArcEffect::EnterStopCopy;
	if (in_saving_group(from) && !in_saving_group(to))
		return ArcEffect::EndSaving;
	if (from == State::Resuming)
		return ArcEffect::EndResuming;
	return ArcEffect::None;
}

SetPlan plan_set(State cur, std::uint32_t target, std::uint64_t mig_flags)
{
	SetPlan p;
	// ERROR cannot be specified as a device state (uapi vfio.h), not even
	// in ERROR where the path would be empty.
	if (target == static_cast<std::uint32_t>(State::Error)) {
		p.refused = true;
		return p;
	}
	auto steps = path(cur, target, mig_flags);
	if (!steps) {
		p.refused = true;
		return p;
	}
	p.path = *steps;
	if (!p.path.empty()) {
		State prev = p.path.size() >= 2 ? p.path[p.path.size() - 2] : cur;
		p.returns_fd = arc_starts_session(prev, p.path.back());
		p.leaves_resuming = cur == State::Resuming;
	}
	return p;
}

std::optional<std::size_t> arcs_to(State cur, const std::vector<State> &path, State observed)
{
	if (observed == cur)
		return 0;
	for (std::size_t i = 0; i + 1 < path.size(); i++)
		if (path[i] == observed)
			return i + 1;
	return std::nullopt;
}

namespace {

// An arc end from 4 random bits: mostly a settable state, sometimes ANY,
// sometimes out of range.
std::uint32_t arc_end(std::uint64_t bits)
{
	auto v = bits % 10;
	if (v < 7)
		return static_cast<std::uint32_t>(v + 1);
	if (v == 7)
		return VFIO_MIG_EMU_ANY_STATE;
	return v == 8 ? 0 : 8 + static_cast<std::uint32_t>((bits >> 8) % 100);
}

bool arc_end_valid(std::uint32_t s)
{
	return s == VFIO_MIG_EMU_ANY_STATE || (s >= 1 && s <= 7);
}

std::string arc_end_name(std::uint32_t s)
{
	return s == VFIO_MIG_EMU_ANY_STATE ? "ANY" : state_name(s);
}

} // namespace

std::string KnobRequest::str() const
{
	static const char *const kNames[] = {"ARC_DELAY", "LOAD_NS_PER_KIB", "LOAD_US_PER_RESOURCE", "MEM_SIZE",
					     "RESOURCE_BYTES", "DIRTY_RATE", "REINIT_POLICY"};
	std::string s = std::string(kNames[sel]) + "=" + std::to_string(value);
	if (sel == kKnobArcDelay)
		s += " arc " + arc_end_name(from) + "->" + arc_end_name(to);
	return s + (valid ? "" : " (invalid)");
}

KnobRequest knob_request(const Op &op)
{
	KnobRequest k;
	k.sel = static_cast<KnobSel>(op.a % kNumKnobSel);
	std::uint64_t b = op.b, shape = b % 10, hi = b >> 8;
	switch (k.sel) {
	case kKnobArcDelay:
		k.from = arc_end(op.c);
		k.to = arc_end(op.d);
		k.value = shape < 6 ? hi % 300 : shape < 8 ? 0 : shape < 9 ? VFIO_MIG_EMU_MAX_DELAY_US + 1 + hi % 1000 : hi % 1000;
		k.valid = arc_end_valid(k.from) && arc_end_valid(k.to) && k.value <= VFIO_MIG_EMU_MAX_DELAY_US;
		break;
	case kKnobLoadNs:
		k.value = shape < 8 ? hi % 1000 : VFIO_MIG_EMU_MAX_LOAD_NS_PER_KIB + 1 + hi % 1000;
		k.valid = k.value <= VFIO_MIG_EMU_MAX_LOAD_NS_PER_KIB;
		break;
	case kKnobLoadUs:
		k.value = shape < 8 ? hi % 100 : VFIO_MIG_EMU_MAX_LOAD_US_PER_RESOURCE + 1 + hi % 1000;
		k.valid = k.value <= VFIO_MIG_EMU_MAX_LOAD_US_PER_RESOURCE;
		break;
	case kKnobMemSize:
		k.value = shape < 5 ? VFIO_MIG_EMU_PAGE_SIZE * (1 + hi % 512)
			: shape < 7 ? VFIO_MIG_EMU_PAGE_SIZE * (1 + hi % 512) + 1 + hi % 4095
			: shape < 8 ? 0 : VFIO_MIG_EMU_MAX_MEM_SIZE + VFIO_MIG_EMU_PAGE_SIZE * (1 + hi % 16);
		k.valid = k.value >= VFIO_MIG_EMU_MIN_MEM_SIZE && k.value <= VFIO_MIG_EMU_MAX_MEM_SIZE &&
			  k.value % VFIO_MIG_EMU_PAGE_SIZE == 0;
		break;
	case kKnobResourceBytes:
		k.value = shape < 8 ? hi % 257 : VFIO_MIG_EMU_MAX_RESOURCE_BYTES + 1 + hi % 1000;
		k.valid = k.value <= VFIO_MIG_EMU_MAX_RESOURCE_BYTES;
		break;
	case kKnobDirtyRate:
		k.value = shape < 5 ? 0 : shape < 8 ? hi % 200 : VFIO_MIG_EMU_MAX_DIRTY_RATE + 1 + hi % 1000;
		k.valid = k.value <= VFIO_MIG_EMU_MAX_DIRTY_RATE;
		break;
	default:
		k.sel = kKnobReinitPolicy;
		k.value = shape < 8 ? hi % 2 : 2 + hi % 100;
		k.valid = k.value <= 1;
		break;
	}
	return k;
}

Expect expect_knob(const KnobRequest &k, bool device_open)
{
	if (!k.valid) {
		Expect e = Expect::fail(EINVAL).or_err(ERANGE);
		if (k.sel == kKnobMemSize && device_open)
			e.or_err(EBUSY);
		return e;
	}
	if (k.sel == kKnobMemSize && device_open)
		return Expect::fail(EBUSY);
	return Expect::success();
}

bool fault_effect_allowed(std::uint32_t site, std::uint32_t effect)
{
	using enum vfio_mig_emu_fault_effect;
	switch (site) {
	case VFIO_MIG_EMU_SITE_SET_STATE:
	case VFIO_MIG_EMU_SITE_RESET:
		return effect == VFIO_MIG_EMU_EFFECT_FAIL || effect == VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR ||
		       effect == VFIO_MIG_EMU_EFFECT_DELAY;
	case VFIO_MIG_EMU_SITE_READ:
	case VFIO_MIG_EMU_SITE_WRITE:
		return effect >= VFIO_MIG_EMU_EFFECT_FAIL && effect <= VFIO_MIG_EMU_EFFECT_CORRUPT;
	case VFIO_MIG_EMU_SITE_PRECOPY_INFO:
	case VFIO_MIG_EMU_SITE_DATA_SIZE:
		return effect == VFIO_MIG_EMU_EFFECT_FAIL || effect == VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR ||
		       effect == VFIO_MIG_EMU_EFFECT_DELAY || effect == VFIO_MIG_EMU_EFFECT_GARBAGE_SIZE;
	case VFIO_MIG_EMU_SITE_OPEN:
		return effect == VFIO_MIG_EMU_EFFECT_FAIL || effect == VFIO_MIG_EMU_EFFECT_DELAY;
	default:
		return false;
	}
}

std::string FaultRequest::str() const
{
	std::string s = "site " + std::to_string(site) + " effect " + std::to_string(effect);
	auto opt = [&](const char *name, const auto &v) {
		if (v)
			s += std::string(" ") + name + " " + std::to_string(*v);
	};
	opt("trigger", trigger);
	opt("n", n);
	opt("ppm", ppm);
	opt("seed", seed);
	if (err)
		s += " errno " + errno_name(static_cast<int>(*err));
	opt("delay_us", delay_us);
	if (from)
		s += " from " + arc_end_name(*from);
	if (to)
		s += " to " + arc_end_name(*to);
	return s + (valid ? "" : " (invalid)");
}

FaultRequest fault_request(const Op &op)
{
	FaultRequest f;
	f.site = static_cast<std::uint32_t>(op.a);
	f.effect = static_cast<std::uint32_t>(op.b % 9);
	if (!fault_effect_allowed(f.site, f.effect) && (op.b >> 8) % 4) {
		// Mostly an effect the site takes, so most faults arm.
		std::vector<std::uint32_t> ok;
		for (std::uint32_t e = 1; e <= 6; e++)
			if (fault_effect_allowed(f.site, e))
				ok.push_back(e);
		if (!ok.empty())
			f.effect = ok[(op.b >> 16) % ok.size()];
	}
	if (f.effect == VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR &&
	    (f.site == VFIO_MIG_EMU_SITE_READ || f.site == VFIO_MIG_EMU_SITE_WRITE ||
	     f.site == VFIO_MIG_EMU_SITE_PRECOPY_INFO))
		f.effect = VFIO_MIG_EMU_EFFECT_FAIL;
	bool fail = f.effect == VFIO_MIG_EMU_EFFECT_FAIL || f.effect == VFIO_MIG_EMU_EFFECT_FAIL_TO_ERROR;
	bool delay = f.effect == VFIO_MIG_EMU_EFFECT_DELAY;
	bool set_state = f.site == VFIO_MIG_EMU_SITE_SET_STATE;
	std::uint64_t c = op.c, d = op.d;
	bool misuse = (c >> 60) == 0; // 1 in 16: an attribute the fault does not take
	bool valid = f.site >= 1 && f.site <= 7 && fault_effect_allowed(f.site, f.effect);

	switch (c % 6) {
	case 0: break; // default trigger: every call
	case 5: f.trigger = 9; valid = false; break;
	default: f.trigger = static_cast<std::uint32_t>(c % 6); break;
	}
	if (f.trigger && *f.trigger >= 1 && *f.trigger <= 3) {
		f.n = (c >> 16) % 20 ? 1 + static_cast<std::uint32_t>((c >> 8) % 4) : 0;
		valid = valid && *f.n >= 1;
	} else if (f.trigger && *f.trigger == 4) {
		f.ppm = (c >> 44) % 20 ? 1 + static_cast<std::uint32_t>((c >> 24) % 300000) : 0;
		f.seed = c >> 32;
		valid = valid && *f.ppm >= 1;
		if (misuse) {
			f.n = 1;
			valid = false;
		}
	}
	if (fail || misuse) {
		auto e = d % 30;
		if (e == 0) // out of range, or kernel-internal (ERESTARTSYS)
			f.err = std::array{0u, 5000u, 512u}[(d >> 8) % 3];
		else if (e > 2)
			f.err = static_cast<std::uint32_t>(kFaultErrnos[(d >> 8) % std::size(kFaultErrnos)]);
		// e == 1, 2: no errno, the kernel's default EIO
		if (f.err && (!fail || *f.err == 0 || *f.err > VFIO_MIG_EMU_MAX_FAULT_ERRNO))
			valid = false;
	}
	if (delay || (misuse && (d >> 12) % 2)) {
		if ((d >> 56) % 20)
			f.delay_us = 1 + static_cast<std::uint32_t>((d >> 16) % 500);
		else if (delay)
			valid = false; // DELAY without its DELAY_US
		if (!delay && f.delay_us)
			valid = false; // DELAY_US with another effect
	}
	if (set_state || (misuse && (d >> 13) % 2)) {
		auto fb = (d >> 32) % 11, tb = (d >> 40) % 11;
		if (fb < 10)
			f.from = arc_end(fb);
		if (tb < 10)
			f.to = arc_end(tb);
		if ((f.from && !arc_end_valid(*f.from)) || (f.to && !arc_end_valid(*f.to)))
			valid = false;
		if (!set_state && (f.from || f.to))
			valid = false;
	}
	f.valid = valid;
	return f;
}

Expect expect_fault_add(const FaultRequest &f, std::size_t armed)
{
	if (!f.valid)
		return Expect::fail(EINVAL).or_err(ERANGE);
	if (armed >= VFIO_MIG_EMU_MAX_FAULTS)
		return Expect::fail(ENOSPC);
	return Expect::success();
}

bool initial_bytes_ok(std::optional<std::uint64_t> last, std::uint64_t now, bool reinit)
{
	return reinit || !last || now <= *last;
}

} // namespace vfiomig::fuzz
