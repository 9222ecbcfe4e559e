// Marks the kernel log at each test start and fails the test whose window
// shows a kernel warning, BUG, oops, lockdep, KASAN or hung-task report.
#pragma once

#include <gtest/gtest.h>

#include "vfiomig/fd.hpp"

namespace vfiomig::test {

class KmsgListener : public ::testing::EmptyTestEventListener {
public:
	KmsgListener();
	void OnTestStart(const ::testing::TestInfo &info) override;
	void OnTestEnd(const ::testing::TestInfo &info) override;

private:
	void drain(std::vector<std::string> *out);
	Fd reader_;
	Fd writer_;
};

/// The first bad pattern a kernel log line contains, or nullptr.
const char *kmsg_bad_pattern(const std::string &line);

} // namespace vfiomig::test
