// Parsing and checking fixtures/ioctl-matrix.tsv (see ioctl_matrix_table.hpp).
#include "ioctl_matrix_table.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <unistd.h>

#include "fixture_path.hpp"
#include "vfiomig/fd.hpp"

namespace vfiomig::matrix {

namespace {

constexpr Capability kCapabilities[] = {Capability::PreCopy, Capability::P2P, Capability::PrecopyV2,
					Capability::DmaLogging};

std::vector<std::string_view> split(std::string_view s, char sep)
{
	std::vector<std::string_view> out;
	for (;;) {
		auto pos = s.find(sep);
		out.push_back(s.substr(0, pos));
		if (pos == std::string_view::npos)
			return out;
		s.remove_prefix(pos + 1);
	}
}

std::string_view trim(std::string_view s)
{
	while (!s.empty() && (s.front() == ' ' || s.front() == '\r'))
		s.remove_prefix(1);
	while (!s.empty() && (s.back() == ' ' || s.back() == '\r'))
		s.remove_suffix(1);
	return s;
}

std::string lower(std::string_view s)
{
	std::string out(s);
	for (char &c : out)
		c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	return out;
}

bool is_name(std::string_view s)
{
	return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
		return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
	});
}

struct RevBit {
	const char *name;
	unsigned bit;
};
constexpr RevBit kRevents[] = {{"IN", POLLIN}, {"OUT", POLLOUT}, {"ERR", POLLERR}, {"HUP", POLLHUP}};

std::string revents_text(unsigned r)
{
	if (!r)
		return "none";
	std::string out;
	for (const auto &b : kRevents) {
		if (r & b.bit)
			out += (out.empty() ? "" : "+") + std::string(b.name);
	}
	return out;
}

std::optional<Requirement> parse_requirement(std::string_view s, std::string *err)
{
	Requirement r;
	if (s == "any")
		return r;
	for (std::string_view lit : split(s, '+')) {
		bool neg = !lit.empty() && lit.front() == '!';
		if (neg)
			lit.remove_prefix(1);
		auto it = std::find_if(std::begin(kCapabilities), std::end(kCapabilities),
				       [&](Capability c) { return capability_name(c) == lit; });
		if (it == std::end(kCapabilities)) {
			*err = "unknown capability '" + std::string(lit) +
			       "' in requires (PRE_COPY, P2P, PRECOPY_V2, DMA_LOGGING, each may be negated with !; or any)";
			return std::nullopt;
		}
		r.literals.push_back({*it, neg});
	}
	std::sort(r.literals.begin(), r.literals.end());
	for (std::size_t i = 1; i < r.literals.size(); i++) {
		if (r.literals[i].cap == r.literals[i - 1].cap) {
			*err = "requires names " + capability_name(r.literals[i].cap) + " twice";
			return std::nullopt;
		}
	}
	return r;
}

std::optional<Expectation> parse_expectation(std::string_view s, std::string *err)
{
	Expectation e;
	if (s == "untested") {
		e.untested = true;
		return e;
	}
	for (std::string_view alt : split(s, '|')) {
		alt = trim(alt);
		Expectation::Alt a{Expectation::Alt::Ok};
		if (alt == "ok") {
			a.kind = Expectation::Alt::Ok;
		} else if (alt == "eof") {
			a.kind = Expectation::Alt::Eof;
		} else if (alt.starts_with("revents=")) {
			a.kind = Expectation::Alt::Revents;
			std::string_view bits = alt.substr(8);
			if (bits != "none") {
				for (std::string_view b : split(bits, '+')) {
					auto it = std::find_if(std::begin(kRevents), std::end(kRevents),
							       [&](const RevBit &r) { return b == r.name; });
					if (it == std::end(kRevents)) {
						*err = "unknown poll bit '" + std::string(b) +
						       "' (IN, OUT, ERR, HUP, or revents=none)";
						return std::nullopt;
					}
					a.revents |= it->bit;
				}
			}
		} else if (auto en = parse_errno(alt)) {
			a.kind = Expectation::Alt::Errno;
			a.err = *en;
		} else {
			*err = "unknown outcome '" + std::string(alt) +
			       "' (ok, eof, an errno name, revents=..., alternatives joined by |, or untested)";
			return std::nullopt;
		}
		if (std::find(e.alts.begin(), e.alts.end(), a) != e.alts.end()) {
			*err = "outcome '" + std::string(alt) + "' listed twice";
			return std::nullopt;
		}
		e.alts.push_back(a);
	}
	return e;
}

std::optional<After> parse_after(std::string_view s, std::string *err)
{
	After a;
	if (s == "-")
		return a;
	if (s == "same") {
		a.kind = After::Same;
		return a;
	}
	if (auto st = parse_state(s); st && state_name(*st) == s) {
		a.kind = After::InState;
		a.state = *st;
		return a;
	}
	*err = "unknown after '" + std::string(s) + "' (-, same, or a state name such as STOP_COPY)";
	return std::nullopt;
}

} // namespace

bool Target::has(Capability c) const
{
	switch (c) {
	case Capability::PreCopy:
		return (mig_flags & kMigPreCopy) != 0;
	case Capability::P2P:
		return (mig_flags & kMigP2P) != 0;
	case Capability::PrecopyV2:
		return precopy_v2;
	case Capability::DmaLogging:
		return dma_logging;
	}
	return false;
}

std::string capability_name(Capability c)
{
	switch (c) {
	case Capability::PreCopy:
		return "PRE_COPY";
	case Capability::P2P:
		return "P2P";
	case Capability::PrecopyV2:
		return "PRECOPY_V2";
	case Capability::DmaLogging:
		return "DMA_LOGGING";
	}
	return "?";
}

bool Requirement::holds(const Target &t) const
{
	return std::all_of(literals.begin(), literals.end(),
			   [&](const Literal &l) { return t.has(l.cap) != l.negated; });
}

std::string Requirement::why_not(const Target &t) const
{
	for (const Literal &l : literals) {
		if (t.has(l.cap) == l.negated)
			return (l.negated ? "has " : "lacks ") + capability_name(l.cap);
	}
	return "";
}

bool Requirement::disjoint(const Requirement &other) const
{
	for (const Literal &a : literals) {
		for (const Literal &b : other.literals) {
			if (a.cap == b.cap && a.negated != b.negated)
				return true;
		}
	}
	return false;
}

std::string Requirement::text() const
{
	if (literals.empty())
		return "any";
	std::string out;
	for (const Literal &l : literals)
		out += (out.empty() ? "" : "+") + std::string(l.negated ? "!" : "") + capability_name(l.cap);
	return out;
}

std::string Requirement::name_fragment() const
{
	if (literals.empty())
		return "any";
	std::string out;
	for (const Literal &l : literals)
		out += (out.empty() ? "" : "_") + std::string(l.negated ? "no_" : "") + lower(capability_name(l.cap));
	return out;
}

std::string Outcome::describe() const
{
	if (err)
		return errno_name(err);
	if (polled)
		return "revents=" + revents_text(revents);
	return eof ? "eof (0)" : "ok";
}

bool Expectation::admits(const Outcome &o) const
{
	for (const Alt &a : alts) {
		switch (a.kind) {
		case Alt::Ok:
			if (!o.err && !o.eof && !o.polled)
				return true;
			break;
		case Alt::Eof:
			if (!o.err && o.eof)
				return true;
			break;
		case Alt::Errno:
			if (o.err == a.err)
				return true;
			break;
		case Alt::Revents:
			if (!o.err && o.polled && o.revents == a.revents)
				return true;
			break;
		}
	}
	return false;
}

bool Expectation::may_fail() const
{
	return std::any_of(alts.begin(), alts.end(), [](const Alt &a) { return a.kind == Alt::Errno; });
}

std::string Expectation::text() const
{
	if (untested)
		return "untested";
	std::string out;
	for (const Alt &a : alts) {
		if (!out.empty())
			out += "|";
		switch (a.kind) {
		case Alt::Ok:
			out += "ok";
			break;
		case Alt::Eof:
			out += "eof";
			break;
		case Alt::Errno:
			out += errno_name(a.err);
			break;
		case Alt::Revents:
			out += "revents=" + revents_text(a.revents);
			break;
		}
	}
	return out;
}

std::string After::text() const
{
	switch (kind) {
	case Unchecked:
		return "-";
	case Same:
		return "same";
	case InState:
		return state_name(state);
	}
	return "?";
}

std::optional<int> parse_errno(std::string_view name)
{
	if (name.size() < 2 || name.front() != 'E')
		return std::nullopt;
	for (int e = 1; e < 256; e++) {
		if (errno_name(e) == name)
			return e;
	}
	return std::nullopt;
}

std::vector<Row> parse_table(std::string_view text, const std::string &source, const Registry &reg)
{
	std::vector<std::string> problems;
	auto problem = [&](int line, const std::string &what) {
		problems.push_back(source + ":" + std::to_string(line) + ": " + what);
	};
	std::vector<Row> rows;
	bool header_seen = false;
	int line = 0;
	for (std::string_view raw : split(text, '\n')) {
		line++;
		std::string_view l = raw;
		if (!l.empty() && l.back() == '\r')
			l.remove_suffix(1);
		if (trim(l).empty() || l.front() == '#')
			continue;
		if (!header_seen) {
			header_seen = true;
			if (l != kHeader)
				problem(line, "the first row must be the header '" + std::string(kHeader) +
						      "' (tab-separated)");
			continue;
		}
		auto cols = split(l, '\t');
		if (cols.size() != 6) {
			problem(line, "expected 6 tab-separated columns (call, condition, requires, expected, after, rule), found " +
					      std::to_string(cols.size()));
			continue;
		}
		for (auto &c : cols)
			c = trim(c);
		static const char *const kColumn[] = {"call", "condition", "requires", "expected", "after", "rule"};
		bool empty = false;
		for (int i = 0; i < 6; i++) {
			if (cols[i].empty()) {
				problem(line, std::string("empty ") + kColumn[i] + " column");
				empty = true;
			}
		}
		if (empty)
			continue;

		Row r;
		r.line = line;
		r.call = cols[0];
		r.condition = cols[1];
		r.rule = cols[5];
		r.module_choice = r.rule.starts_with(kModuleChoice);
		bool bad = false;
		auto call_it = reg.conditions_of.find(r.call);
		if (call_it == reg.conditions_of.end()) {
			problem(line, "unknown call '" + r.call + "'");
			bad = true;
		}
		if (!reg.conditions.count(r.condition)) {
			problem(line, "unknown condition '" + r.condition + "'");
			bad = true;
		} else if (call_it != reg.conditions_of.end() && !call_it->second.count(r.condition)) {
			problem(line, "call '" + r.call + "' has no condition '" + r.condition +
					      "' (not executable: register it or drop the row)");
			bad = true;
		}
		if (!is_name(r.call) || !is_name(r.condition)) {
			problem(line, "call and condition names are lower_case_with_underscores");
			bad = true;
		}
		std::string err;
		if (auto q = parse_requirement(cols[2], &err))
			r.needs = *q;
		else {
			problem(line, err);
			bad = true;
		}
		if (auto e = parse_expectation(cols[3], &err))
			r.expected = *e;
		else {
			problem(line, err);
			bad = true;
		}
		if (auto a = parse_after(cols[4], &err))
			r.after = *a;
		else {
			problem(line, err);
			bad = true;
		}
		if (!bad)
			rows.push_back(std::move(r));
	}
	if (!header_seen)
		problem(line, "no header row: the table is empty");

	// Duplicates and overlapping requirements within one call x condition.
	std::map<std::pair<std::string, std::string>, std::vector<const Row *>> by_pair;
	for (const Row &r : rows)
		by_pair[{r.call, r.condition}].push_back(&r);
	for (auto &[pair, list] : by_pair) {
		for (std::size_t i = 0; i < list.size(); i++) {
			for (std::size_t j = 0; j < i; j++) {
				const Row &a = *list[j], &b = *list[i];
				if (a.needs == b.needs)
					problem(b.line, "duplicate cell " + b.call + " x " + b.condition + " (requires " +
								b.needs.text() + "), first at line " + std::to_string(a.line));
				else if (!a.needs.disjoint(b.needs))
					problem(b.line, "cell " + b.call + " x " + b.condition + " (requires " + b.needs.text() +
								") overlaps line " + std::to_string(a.line) + " (requires " +
								a.needs.text() + "): a device could match both");
			}
		}
	}
	// Nothing the suite can run is left out of the table.
	for (const auto &[call, conds] : reg.conditions_of) {
		for (const auto &cond : conds) {
			if (!by_pair.count({call, cond}))
				problems.push_back(source + ": call '" + call + "' x condition '" + cond +
						   "' is executable but has no row");
		}
	}
	if (!problems.empty()) {
		std::string msg;
		for (const auto &p : problems)
			msg += p + "\n";
		throw TableError(msg);
	}
	for (Row &r : rows) {
		r.name = r.call + "__" + r.condition;
		if (by_pair[{r.call, r.condition}].size() > 1)
			r.name += "__" + r.needs.name_fragment();
	}
	return rows;
}

std::vector<Row> load_table(const std::string &path, const Registry &reg)
{
	std::ifstream in(path);
	if (!in)
		throw TableError(path + ": cannot read the ioctl matrix table: " + std::strerror(errno) +
				 " (set VFIOMIG_IOCTL_MATRIX to its path)");
	std::stringstream ss;
	ss << in.rdbuf();
	return parse_table(ss.str(), path, reg);
}

std::string find_table(const std::string &source_dir)
{
	if (const char *env = std::getenv("VFIOMIG_IOCTL_MATRIX"); env && *env)
		return env;
	return test::find_fixture("ioctl-matrix.tsv", source_dir);
}

} // namespace vfiomig::matrix
