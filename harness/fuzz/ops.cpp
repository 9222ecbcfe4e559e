#include "ops.hpp"

#include <array>
#include <charconv>
#include <sstream>

#include "vfio_mig_emu.h"
#include "vfiomig/state.hpp"

namespace vfiomig::fuzz {

std::uint64_t Rng::next()
{
	__u64 s = state_;
	std::uint64_t z = vfio_mig_emu_splitmix64(&s);
	state_ = s;
	return z;
}

std::uint64_t Rng::below(std::uint64_t n)
{
	// One draw per call keeps streams aligned; the modulo bias is
	// irrelevant for fuzzing.
	return next() % n;
}

std::uint64_t thread_seed(std::uint64_t seed, unsigned thread)
{
	// Two rounds so seeds 1, 2, 3 and threads 0, 1, 2 do not give
	// overlapping (shifted) splitmix64 sequences.
	Rng r(seed);
	std::uint64_t base = r.next();
	Rng t(base ^ (0xd1b54a32d192ed03ULL * (thread + 1)));
	return t.next();
}

namespace {

constexpr std::array<const char *, kNumOpKinds> kNames = {
	"SET_STATE", "GET_STATE", "RESET", "READ", "WRITE", "POLL", "PRECOPY_INFO", "FEATURE",
	"REGION_READ", "REGION_WRITE", "CLOSE_DATA", "REOPEN", "DEV_GET", "STATS", "KNOB",
	"FAULT_ADD", "FAULT_CLEAR", "WORKLOAD", "COUNTERS_RESET", "NETLINK_RAW",
};

// Relative weights, in OpKind order: state changes and the data path
// dominate; control-plane changes are rarer because each one loosens what
// the model can predict (faults) or slows every later step (delays).
constexpr std::array<unsigned, kNumOpKinds> kWeights = {
	40, 10, 6, 28, 12, 8, 20, 12, 12, 12, 4, 2, 6, 2, 4, 3, 3, 4, 1, 4,
};

constexpr std::uint32_t kFeatGet = 1u << 16, kFeatSet = 1u << 17, kFeatProbe = 1u << 18;

std::uint64_t pick_size(Rng &r)
{
	switch (r.below(10)) {
	case 0: return r.below(2) ? 0 : 1 + r.below(64);
	case 1: return 65537 + r.below(200000);
	case 2: case 3: case 4: return 4097 + r.below(61440);
	default: return 1 + r.below(4096);
	}
}

std::uint64_t region_offset(Rng &r, std::uint64_t index)
{
	switch (index) {
	case 7: // config
		if (r.chance(8, 10))
			return r.below(256);
		return r.below(2) ? 256 + r.below(64) : r.next() >> 20;
	case 0: { // BAR0
		static constexpr std::uint64_t kRegs[] = {0x000, 0x004, 0x008, 0x00c, 0x010, 0x014, 0x018,
							  0x01c, 0x020, 0x024, 0x028, 0x02c, 0x0fc, 0x1fc};
		switch (r.below(10)) {
		case 0: return r.below(4096 + 64);                     // any, unaligned too
		case 1: return 4096 + 4 * r.below(64);                 // beyond
		case 2: case 3: case 4: return 0x100 + 4 * r.below(64); // scratch
		default: return kRegs[r.below(std::size(kRegs))];
		}
	}
	case 2: // BAR2 (default 1 MiB)
		switch (r.below(10)) {
		case 0: return (1u << 20) - r.below(8192);
		case 1: return (1u << 20) + r.below(1u << 20);
		default: return r.below(1u << 20);
		}
	default:
		return r.below(8192);
	}
}

std::uint64_t region_size(Rng &r, std::uint64_t index)
{
	switch (index) {
	case 7: return 1 + r.below(r.chance(1, 4) ? 256 : 8);
	case 0: return r.chance(9, 10) ? 4 : 1 + r.below(8);
	case 2: return 1 + r.below(r.chance(1, 3) ? 16384 : 4096);
	default: return 1 + r.below(64);
	}
}

} // namespace

std::string op_kind_name(OpKind k)
{
	auto i = static_cast<unsigned>(k);
	return i < kNumOpKinds ? kNames[i] : "OP(" + std::to_string(i) + ")";
}

std::optional<OpKind> parse_op_kind(std::string_view name)
{
	for (unsigned i = 0; i < kNumOpKinds; i++)
		if (name == kNames[i])
			return static_cast<OpKind>(i);
	return std::nullopt;
}

Op generate(Rng &r, unsigned ndev)
{
	unsigned total = 0;
	for (unsigned w : kWeights)
		total += w;
	unsigned x = static_cast<unsigned>(r.below(total));
	unsigned k = 0;
	while (x >= kWeights[k])
		x -= kWeights[k++];

	Op op;
	op.kind = static_cast<OpKind>(k);
	op.dev = static_cast<std::uint32_t>(r.below(ndev ? ndev : 1));
	switch (op.kind) {
	case OpKind::SetState: {
		auto c = r.below(100);
		op.a = c < 75 ? 1 + r.below(7) : c < 83 ? 0 : c < 93 ? 8 + r.below(24) : r.next() & 0xffffffffu;
		break;
	}
	case OpKind::Read:
		op.a = r.below(16);
		op.b = pick_size(r);
		op.c = r.chance(1, 25);
		break;
	case OpKind::Write:
		op.a = r.below(16);
		op.b = r.chance(1, 2) ? 1 + r.below(64) : pick_size(r);
		op.c = r.below(100) < 50 ? 0 : r.below(100) < 70 ? 1 : 2;
		op.d = r.chance(1, 25);
		break;
	case OpKind::Poll:
	case OpKind::CloseData:
		op.a = r.below(16);
		break;
	case OpKind::PrecopyInfo: {
		op.a = r.below(16);
		auto c = r.below(10);
		op.b = c < 8 ? 24 : c < 9 ? r.below(24) : 25 + r.below(4072);
		auto f = r.below(20);
		op.c = f < 14 ? 0 : f < 17 ? 1 : (r.next() & 0xffffffffu);
		op.d = r.chance(1, 33);
		break;
	}
	case OpKind::Feature: {
		static constexpr std::uint32_t kIdx[] = {1, 1, 2, 2, 9, 9, 12, 12, 12, 0, 3, 4, 5, 6, 7, 8, 10, 11, 13};
		static constexpr std::uint32_t kDirs[] = {
			kFeatGet, kFeatGet, kFeatSet, kFeatSet, kFeatProbe | kFeatGet, kFeatProbe | kFeatSet,
			kFeatProbe, 0, kFeatGet | kFeatSet, kFeatProbe | kFeatGet | kFeatSet,
		};
		std::uint32_t idx = r.chance(17, 20) ? kIdx[r.below(std::size(kIdx))]
						      : static_cast<std::uint32_t>(r.below(0x10000));
		std::uint32_t flags = idx | kDirs[r.below(std::size(kDirs))];
		if (r.chance(1, 20))
			flags |= 1u << (19 + r.below(13)); // an undefined flag bit
		op.a = flags;
		auto c = r.below(20);
		std::uint32_t payload = (idx == 1 || idx == 2 || idx == 9) ? 8 : idx == 12 ? 0 : 16;
		op.b = c < 14 ? 8 + payload : c < 17 ? r.below(8) : r.below(512);
		break;
	}
	case OpKind::RegionRead:
	case OpKind::RegionWrite: {
		auto c = r.below(10);
		op.a = c < 3 ? 7 : c < 6 ? 0 : c < 9 ? 2 : r.below(16);
		op.b = region_offset(r, op.a);
		op.c = region_size(r, op.a);
		op.d = r.chance(9, 10) ? r.below(64) : (r.next() & 0xffffffffu);
		break;
	}
	case OpKind::Knob:
		op.a = r.below(kNumKnobSel);
		op.b = r.next();
		op.c = r.next();
		op.d = r.next();
		break;
	case OpKind::FaultAdd:
		op.a = r.chance(1, 20) ? r.below(10) : 1 + r.below(7);
		op.b = r.next();
		op.c = r.next();
		op.d = r.next();
		break;
	case OpKind::FaultClear:
		op.a = r.chance(1, 3) ? 0 : 1 + r.below(8);
		break;
	case OpKind::Workload:
		op.a = r.chance(1, 10) ? r.below(6) : 1 + r.below(2);
		op.b = r.chance(1, 20) ? r.next() & 0xffffffffu : op.a == 2 ? r.below(4) : r.below(65);
		break;
	case OpKind::NetlinkRaw:
		op.a = r.below(18);
		op.b = r.next();
		op.c = r.next();
		break;
	default:
		break;
	}
	return op;
}

std::vector<Op> generate_ops(std::uint64_t seed, unsigned thread, std::size_t n, unsigned ndev)
{
	Rng r(thread_seed(seed, thread));
	std::vector<Op> ops;
	ops.reserve(n);
	for (std::size_t i = 0; i < n; i++)
		ops.push_back(generate(r, ndev));
	return ops;
}

std::size_t ops_for_thread(std::size_t total, unsigned threads, unsigned thread)
{
	if (!threads)
		return 0;
	return total / threads + (thread < total % threads ? 1 : 0);
}

namespace {

std::string hex(std::uint64_t v)
{
	std::ostringstream o;
	o << "0x" << std::hex << v;
	return o.str();
}

std::string feature_flags_name(std::uint64_t f)
{
	std::string s = "feature=" + std::to_string(f & 0xffff);
	if (f & kFeatGet)
		s += "|GET";
	if (f & kFeatSet)
		s += "|SET";
	if (f & kFeatProbe)
		s += "|PROBE";
	if (std::uint64_t junk = f & ~std::uint64_t(0xffff | kFeatGet | kFeatSet | kFeatProbe))
		s += "|" + hex(junk);
	return s;
}

const char *region_name(std::uint64_t idx)
{
	switch (idx) {
	case 7: return "config";
	case 0: return "BAR0";
	case 2: return "BAR2";
	default: return nullptr;
	}
}

std::string region(const Op &op)
{
	const char *n = region_name(op.a);
	return std::string(n ? n : ("region" + std::to_string(op.a)).c_str()) + " +" + hex(op.b) + " size " +
	       std::to_string(op.c);
}

} // namespace

std::string describe(const Op &op)
{
	std::string s = "dev" + std::to_string(op.dev) + " " + op_kind_name(op.kind);
	switch (op.kind) {
	case OpKind::SetState:
		return s + " target=" + state_name(static_cast<std::uint32_t>(op.a));
	case OpKind::Read:
		return s + " slot " + std::to_string(op.a) + " size " + std::to_string(op.b) +
		       (op.c ? " bad-pointer" : "");
	case OpKind::Write: {
		static const char *const kContent[] = {"garbage", "valid-header", "zeros"};
		return s + " slot " + std::to_string(op.a) + " size " + std::to_string(op.b) + " " +
		       kContent[op.c % 3] + (op.d ? " bad-pointer" : "");
	}
	case OpKind::Poll:
	case OpKind::CloseData:
		return s + " slot " + std::to_string(op.a);
	case OpKind::PrecopyInfo:
		return s + " slot " + std::to_string(op.a) + " argsz " + std::to_string(op.b) + " flags " +
		       hex(op.c) + (op.d ? " bad-pointer" : "");
	case OpKind::Feature:
		return s + " " + feature_flags_name(op.a) + " argsz " + std::to_string(op.b);
	case OpKind::RegionRead:
		return s + " " + region(op);
	case OpKind::RegionWrite:
		return s + " " + region(op) + " value " + hex(op.d);
	case OpKind::Knob:
	case OpKind::FaultAdd:
	case OpKind::NetlinkRaw:
		// The runner prints what these resolve to; the raw words identify them.
		return s + " " + hex(op.a) + " " + hex(op.b) + " " + hex(op.c) + " " + hex(op.d);
	case OpKind::FaultClear:
		return s + (op.a ? " slot " + std::to_string(op.a - 1) : std::string(" all"));
	case OpKind::Workload:
		return s + " action " + std::to_string(op.a) + " count " + std::to_string(op.b);
	default:
		return s;
	}
}

std::string encode(const Op &op)
{
	return op_kind_name(op.kind) + " " + std::to_string(op.dev) + " " + std::to_string(op.a) + " " +
	       std::to_string(op.b) + " " + std::to_string(op.c) + " " + std::to_string(op.d);
}

std::optional<Op> decode(std::string_view line)
{
	std::istringstream in{std::string(line)};
	std::string kind;
	Op op;
	if (!(in >> kind >> op.dev >> op.a >> op.b >> op.c >> op.d))
		return std::nullopt;
	std::string rest;
	if (in >> rest)
		return std::nullopt;
	auto k = parse_op_kind(kind);
	if (!k)
		return std::nullopt;
	op.kind = *k;
	return op;
}

} // namespace vfiomig::fuzz
