// The ioctl edge-case matrix table (fixtures/ioctl-matrix.tsv): its rows,
// parsed and checked against the names the suite can execute. Pure logic,
// shared by the guest suite (which runs the rows) and the host unit tests.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "vfiomig/state.hpp"

namespace vfiomig::matrix {

/// What a row may need from the device under test, probed at run time.
enum class Capability {
	PreCopy,    ///< VFIO_MIGRATION_PRE_COPY in VFIO_DEVICE_FEATURE_MIGRATION
	P2P,        ///< VFIO_MIGRATION_P2P
	PrecopyV2,  ///< PROBE|SET of VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 succeeds
	DmaLogging, ///< PROBE|SET of VFIO_DEVICE_FEATURE_DMA_LOGGING_START succeeds
};

/// The probed facts about one device.
struct Target {
	std::uint64_t mig_flags = 0;
	bool precopy_v2 = false;
	bool dma_logging = false;
	bool has(Capability c) const;
};

/// "PRE_COPY", "P2P", "PRECOPY_V2", "DMA_LOGGING".
std::string capability_name(Capability c);

/// The "requires" column: `any`, or literals joined by '+', each a
/// capability, negated with a leading '!' (e.g. `PRE_COPY+!P2P`).
struct Requirement {
	struct Literal {
		Capability cap;
		bool negated;
		auto operator<=>(const Literal &) const = default;
	};
	std::vector<Literal> literals; ///< sorted; empty = any

	bool holds(const Target &t) const;
	/// The first literal `t` violates, as text ("lacks PRE_COPY").
	std::string why_not(const Target &t) const;
	/// True when no device can satisfy both (one has a literal the other negates).
	bool disjoint(const Requirement &other) const;
	/// The column text, normalised ("any", "PRE_COPY+!P2P").
	std::string text() const;
	/// Test-name fragment: "pre_copy_no_p2p" ("any" for none).
	std::string name_fragment() const;
	bool operator==(const Requirement &) const = default;
};

/// What a call produced.
struct Outcome {
	int err = 0;          ///< 0: success
	bool eof = false;     ///< read()/write() returned 0
	bool polled = false;  ///< a poll() result: revents is meaningful
	unsigned revents = 0; ///< POLLIN/POLLOUT/POLLERR/POLLHUP only
	static Outcome success() { return {}; }
	static Outcome error(int e) { return {e, false, false, 0}; }
	static Outcome zero() { return {0, true, false, 0}; }
	static Outcome poll(unsigned revents) { return {0, false, true, revents}; }
	std::string describe() const;
};

/// The "expected" column: alternatives joined by '|'. An alternative is
/// `ok` (success; for read()/write() a positive count), `eof` (read() or
/// write() returned 0), an errno name (`EINVAL`), or a poll result
/// `revents=IN+HUP` (`revents=none`: nothing ready). `untested` alone
/// means the cell is skipped with the rule column as the reason.
struct Expectation {
	struct Alt {
		enum Kind { Ok, Eof, Errno, Revents } kind;
		int err = 0;
		unsigned revents = 0;
		auto operator<=>(const Alt &) const = default;
	};
	std::vector<Alt> alts;
	bool untested = false;

	bool admits(const Outcome &o) const;
	/// True when some alternative is a failure (the call is refused).
	bool may_fail() const;
	std::string text() const;
};

/// The "after" column: `-` (nothing checked), `same` (device state as
/// before the call and a live session still alive), or a state name the
/// device must be in after the call.
struct After {
	enum Kind { Unchecked, Same, InState } kind = Unchecked;
	State state = State::Error;
	std::string text() const;
};

/// One row of the table: one cell of the matrix.
struct Row {
	int line = 0;
	std::string call;
	std::string condition;
	Requirement needs; ///< the "requires" column
	Expectation expected;
	After after;
	std::string rule;
	/// The rule is vfio_mig_emu's choice, not the uAPI's: the rule column
	/// starts with "module:". On a foreign target a different outcome is
	/// reported as a difference, not a failure.
	bool module_choice = false;
	/// Test-name stem: call__condition, plus __<requirement> when the
	/// same call x condition has rows for several requirements.
	std::string name;
};

/// What the suite can execute: for each call, the conditions it has.
struct Registry {
	std::map<std::string, std::set<std::string>> conditions_of; ///< call -> conditions
	std::set<std::string> conditions;                           ///< all condition names
};

/// Every problem of a table, one "source:line: what" per line.
class TableError : public std::runtime_error {
public:
	explicit TableError(const std::string &what) : std::runtime_error(what) {}
};

/// The prefix of a rule column that marks the row as vfio_mig_emu's choice.
inline constexpr std::string_view kModuleChoice = "module:";

/// The column header the table must start with (tab-separated).
inline constexpr std::string_view kHeader = "call\tcondition\trequires\texpected\tafter\trule";

/// Parses and checks a table: header, six non-empty tab-separated columns
/// per row ('#' lines and blank lines ignored), known call and condition
/// names, a registered call x condition, parsable columns, no duplicate
/// cell, no two rows of one call x condition that can apply to the same
/// device, and every registered call x condition present. Throws
/// TableError listing every problem found.
std::vector<Row> parse_table(std::string_view text, const std::string &source, const Registry &reg);

/// Reads and parses a table file (TableError when unreadable).
std::vector<Row> load_table(const std::string &path, const Registry &reg);

/// Where the table is: $VFIOMIG_IOCTL_MATRIX if set, else
/// fixtures/ioctl-matrix.tsv as find_fixture() finds it.
std::string find_table(const std::string &source_dir);

/// errno value for "EINVAL", ... (nullopt when unknown).
std::optional<int> parse_errno(std::string_view name);

} // namespace vfiomig::matrix
