// Helpers for tests of the control plane: expecting a ControlError with an
// errno and an extack text, and a fixture on the "full" profile.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "common.hpp"

namespace vfiomig::test {

/// Runs `fn`; the ControlError it threw, or std::nullopt when it succeeded.
template <typename F>
std::optional<control::ControlError> control_error(F &&fn)
{
	try {
		fn();
	} catch (const control::ControlError &e) {
		return e;
	}
	return std::nullopt;
}

/// Expects `stmt` to fail with errno `e` and an extack containing `text`.
#define EXPECT_CONTROL_ERROR(stmt, e, text)                                                       \
	do {                                                                                      \
		auto ce_ = control_error([&] { stmt; });                                          \
		if (!ce_) {                                                                       \
			ADD_FAILURE() << #stmt << " succeeded, want " << errno_name(e);           \
			break;                                                                    \
		}                                                                                 \
		EXPECT_EQ(errno_name(ce_->err()), errno_name(e)) << ce_->what();                  \
		EXPECT_NE(ce_->extack().find(text), std::string::npos)                            \
			<< "extack \"" << ce_->extack() << "\" does not mention \"" << (text) << "\""; \
	} while (0)

/// The least time a call with a 100 ms DELAY (fault or arc knob) may take:
/// the module sleeps on an hrtimer (CLOCK_MONOTONIC), never less. (Its
/// earlier jiffy-based msleep ended a 100 ms delay after 99.04 ms.)
inline constexpr std::chrono::milliseconds kDelayFloor{100};

/// The longest a call that must not be held up may take: the same call,
/// measured in this run while nothing held it (`baseline`), with head-room
/// for a loaded or KASAN kernel, and never more than half of `held_up`, the
/// least a call that was held up would wait, so the check can still fail.
/// Upper time bounds compare with a baseline this way, not a constant: a
/// slower kernel slows the baseline as much as the call.
inline std::chrono::steady_clock::duration prompt_bound(std::chrono::steady_clock::duration baseline,
							 std::chrono::steady_clock::duration held_up)
{
	using namespace std::chrono_literals;
	return std::min<std::chrono::steady_clock::duration>(4 * baseline + 250ms, held_up / 2);
}

/// Milliseconds, for failure messages.
inline long long ms_of(std::chrono::steady_clock::duration d)
{
	return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

/// Tests on the "full" profile (every optional state).
class FullProfileTest : public ProfileFixture {
protected:
	Target target() const override { return Target{Profile::Full}; }
	void SetUp() override
	{
		ProfileFixture::SetUp();
		if (IsSkipped() || HasFatalFailure())
			return;
		REQUIRE_CONTROL();
	}
};

/// Tests on the "full" profile that set arc delays on the source: its
/// TearDown sets them back to 0 (a skipped test, e.g. on a foreign target,
/// has no control plane and set none).
class ArcDelayTest : public FullProfileTest {
protected:
	void TearDown() override
	{
		control::Client *c = IsSkipped() ? nullptr : nl();
		if (c) {
			control::Knobs off;
			off.arc_delays.push_back({control::kAnyState, control::kAnyState, 0});
			try {
				c->set_knobs(src().label(), off);
			} catch (const Error &) {
			}
		}
		FullProfileTest::TearDown();
	}
};

/// A fault with just site and effect (every call).
inline control::Fault fault(control::Site s, control::Effect e)
{
	control::Fault f;
	f.site = s;
	f.effect = e;
	return f;
}

/// A fault that fires on the first call only.
inline control::Fault first_call(control::Site s, control::Effect e)
{
	control::Fault f = fault(s, e);
	f.trigger = control::Trigger::Nth;
	f.n = 1;
	return f;
}

} // namespace vfiomig::test
