// The kernel-log check recognises the reports that must fail a test, and nothing else.
#include <gtest/gtest.h>

#include "../guest/kmsg_listener.hpp"

using vfiomig::test::kmsg_bad_pattern;

TEST(KmsgPattern, KernelReportsAreBad)
{
	EXPECT_TRUE(kmsg_bad_pattern("WARNING: CPU: 1 PID: 77 at drivers/vfio/vfio_main.c:123 foo+0x1/0x2\n"));
	EXPECT_TRUE(kmsg_bad_pattern("BUG: KASAN: slab-use-after-free in vme_save_read\n"));
	EXPECT_TRUE(kmsg_bad_pattern("Oops: general protection fault, probably for non-canonical address\n"));
	EXPECT_TRUE(kmsg_bad_pattern("WARNING: possible circular locking dependency detected\n"));
	EXPECT_TRUE(kmsg_bad_pattern("INFO: task vfio-migtest:123 blocked for more than 120 seconds.\n"));
	EXPECT_TRUE(kmsg_bad_pattern("lockdep: fixing up alternatives\n"));
}

TEST(KmsgPattern, OrdinaryMessagesAreNot)
{
	EXPECT_FALSE(kmsg_bad_pattern("vfio-migtest: begin Fsm.EveryArcMatchesReferencePath/full\n"));
	EXPECT_FALSE(kmsg_bad_pattern("vfio_mig_emu: loading out-of-tree module taints kernel.\n"));
	EXPECT_FALSE(kmsg_bad_pattern("vfio_mig_emu 4ca06638-...: stream rejected: bad crc in record 3\n"));
}
