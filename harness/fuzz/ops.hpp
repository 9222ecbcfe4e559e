// The fuzzer's operations: a seeded generator (one splitmix64 stream per
// thread), a readable form for reports and a one-line encoding for replay
// files.  Pure logic, unit-tested on the host (harness/unit/fuzz_ops_test).
//
// An operation carries raw random arguments, never fds or states: they are
// resolved when it runs (a data-fd "slot" picks one of the fds the fuzzer
// holds for the device at that moment).  So an operation list stays
// meaningful when the shrinker drops operations before it, and the same
// seed always produces the same lists whatever the device answered.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfiomig::fuzz {

/// splitmix64: the workload PRNG of the uAPI header, reused for streams.
class Rng {
public:
	explicit Rng(std::uint64_t state) : state_(state) {}
	std::uint64_t next();
	/// Uniform in [0, n); n > 0.
	std::uint64_t below(std::uint64_t n);
	/// True with probability num/den.
	bool chance(std::uint64_t num, std::uint64_t den) { return below(den) < num; }

private:
	std::uint64_t state_;
};

/// The stream of thread `thread` for run seed `seed`: independent streams
/// (each seeded by a splitmix64 draw of the seed mixed with the thread).
std::uint64_t thread_seed(std::uint64_t seed, unsigned thread);

enum class OpKind : std::uint8_t {
	SetState,     ///< a: raw target state
	GetState,     ///< check GET == model
	Reset,        ///< VFIO_DEVICE_RESET
	Read,         ///< a: fd slot, b: size, c: 1 = bad buffer pointer
	Write,        ///< a: fd slot, b: size, c: content (0 garbage, 1 valid header, 2 zeros), d: 1 = bad pointer
	Poll,         ///< a: fd slot
	PrecopyInfo,  ///< a: fd slot, b: argsz, c: flags in, d: 1 = bad pointer
	Feature,      ///< a: feature flags (index | GET/SET/PROBE | junk), b: argsz
	RegionRead,   ///< a: region index, b: offset, c: size
	RegionWrite,  ///< a: region index, b: offset, c: size, d: value/seed
	CloseData,    ///< a: fd slot
	Reopen,       ///< close and reopen the device fd
	DevGet,       ///< netlink DEV_GET vs the model
	Stats,        ///< netlink STATS_GET vs every model
	Knob,         ///< a: knob, b: value, c: arc from, d: arc to
	FaultAdd,     ///< a: site, b: effect, c: trigger|n|ppm bits, d: errno/delay/arc bits
	FaultClear,   ///< a: 0 = all, else a fault slot
	Workload,     ///< a: action, b: count
	CountersReset,
	NetlinkRaw,   ///< a: command, b: attribute seed, c: flags bits
	Count_,
};

inline constexpr unsigned kNumOpKinds = static_cast<unsigned>(OpKind::Count_);

struct Op {
	OpKind kind = OpKind::GetState;
	std::uint32_t dev = 0; ///< device index in the run
	std::uint64_t a = 0, b = 0, c = 0, d = 0;
	bool operator==(const Op &) const = default;
};

/// "SET_STATE", "READ", ...
std::string op_kind_name(OpKind k);
std::optional<OpKind> parse_op_kind(std::string_view name);

/// One operation for a run with `ndev` devices.
Op generate(Rng &rng, unsigned ndev);
/// The first `n` operations of thread `thread`'s stream.
std::vector<Op> generate_ops(std::uint64_t seed, unsigned thread, std::size_t n, unsigned ndev);
/// How `total` operations split over `threads` (the first ones get the rest).
std::size_t ops_for_thread(std::size_t total, unsigned threads, unsigned thread);

/// A readable line without the result: "dev1 SET_STATE target=STOP_COPY".
std::string describe(const Op &op);
/// "SET_STATE 1 6 0 0 0" (kind, dev, a, b, c, d) and back.
std::string encode(const Op &op);
std::optional<Op> decode(std::string_view line);

/// Knob selectors of OpKind::Knob (argument a).
enum KnobSel : std::uint32_t {
	kKnobArcDelay, kKnobLoadNs, kKnobLoadUs, kKnobMemSize, kKnobResourceBytes,
	kKnobDirtyRate, kKnobReinitPolicy, kNumKnobSel,
};

} // namespace vfiomig::fuzz
