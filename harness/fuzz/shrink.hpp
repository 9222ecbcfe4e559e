// Delta debugging (Zeller's ddmin, complement-only): the shortest list of
// operations that still fails, found by dropping chunks (halves, quarters,
// ...) and then single elements, keeping every removal that still fails.
// Pure and generic so the host unit tests can check it with a predicate.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <vector>

namespace vfiomig::fuzz {

struct ShrinkStats {
	std::size_t tries = 0;   ///< predicate calls
	bool exhausted = false;  ///< stopped by the budget, not at a 1-minimal list
};

/// `fails(candidate)` re-runs a candidate; `budget()` returns false once
/// no more tries may be spent. The input must fail; the result fails too.
template <typename T>
std::vector<T> ddmin(std::vector<T> input, const std::function<bool(const std::vector<T> &)> &fails,
		     const std::function<bool()> &budget, ShrinkStats *stats = nullptr)
{
	ShrinkStats local;
	ShrinkStats &st = stats ? *stats : local;
	auto try_ = [&](const std::vector<T> &c) {
		st.tries++;
		return fails(c);
	};
	std::size_t n = 2;
	while (input.size() >= 2) {
		std::size_t chunk = (input.size() + n - 1) / n;
		bool reduced = false;
		for (std::size_t start = 0; start < input.size(); start += chunk) {
			if (!budget()) {
				st.exhausted = true;
				return input;
			}
			std::vector<T> complement;
			complement.reserve(input.size());
			complement.insert(complement.end(), input.begin(), input.begin() + static_cast<std::ptrdiff_t>(start));
			std::size_t end = std::min(input.size(), start + chunk);
			complement.insert(complement.end(), input.begin() + static_cast<std::ptrdiff_t>(end), input.end());
			if (!complement.empty() && try_(complement)) {
				input = std::move(complement);
				n = std::max<std::size_t>(n - 1, 2);
				reduced = true;
				break;
			}
		}
		if (reduced)
			continue;
		if (n >= input.size())
			break;
		n = std::min(n * 2, input.size());
	}
	// A last pass over single elements (ddmin ends 1-minimal already when
	// not cut short; this also covers a list shrunk to 2).
	for (std::size_t i = input.size(); i-- > 0 && input.size() > 1;) {
		if (!budget()) {
			st.exhausted = true;
			return input;
		}
		std::vector<T> c = input;
		c.erase(c.begin() + static_cast<std::ptrdiff_t>(i));
		if (try_(c))
			input = std::move(c);
	}
	return input;
}

} // namespace vfiomig::fuzz
