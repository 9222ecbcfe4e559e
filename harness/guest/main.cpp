// vfio-migtest: the in-guest validation suite. Runs as root where
// vfio_mig_emu is loaded; ends with "vfio-migtest: N passed, N failed, N skipped".
#include <gtest/gtest.h>

#include <cstdio>

#include "common.hpp"
#include "kmsg_listener.hpp"
#include "quirk_check.hpp"

int main(int argc, char **argv)
{
	if (vfiomig::test::is_quirk_check(argc, argv))
		return vfiomig::test::quirk_check_main(argc, argv);
	::testing::InitGoogleTest(&argc, argv);
	auto &listeners = ::testing::UnitTest::GetInstance()->listeners();
	// Appended after the printer: end events run in reverse order, so the
	// kernel-log check can still fail the test before it is printed.
	listeners.Append(new vfiomig::test::KmsgListener);

	int rc = RUN_ALL_TESTS();
	try {
		vfiomig::test::release_pool();
	} catch (const std::exception &e) {
		std::fprintf(stderr, "vfio-migtest: releasing instances: %s\n", e.what());
		rc = 1;
	}

	int passed = 0, failed = 0, skipped = 0;
	const auto *ut = ::testing::UnitTest::GetInstance();
	for (int i = 0; i < ut->total_test_suite_count(); i++) {
		const auto *suite = ut->GetTestSuite(i);
		for (int j = 0; j < suite->total_test_count(); j++) {
			const auto *t = suite->GetTestInfo(j);
			if (!t->should_run())
				continue;
			const auto *res = t->result();
			if (res->Skipped())
				skipped++;
			else if (res->Failed())
				failed++;
			else
				passed++;
		}
	}
	std::printf("vfio-migtest: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return rc != 0 || failed ? 1 : 0;
}
