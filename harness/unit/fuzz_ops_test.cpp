// The fuzzer's operation streams: deterministic per seed, independent per
// thread, shaped as intended, and round-tripping through replay files.
#include <gtest/gtest.h>

#include <set>

#include "ops.hpp"

using namespace vfiomig::fuzz;

TEST(FuzzOps, SameSeedGivesTheSameOperations)
{
	EXPECT_EQ(generate_ops(42, 0, 500, 4), generate_ops(42, 0, 500, 4));
	EXPECT_EQ(generate_ops(42, 3, 500, 4), generate_ops(42, 3, 500, 4));
}

TEST(FuzzOps, ThreadsAndSeedsGetDifferentStreams)
{
	EXPECT_NE(generate_ops(42, 0, 100, 4), generate_ops(42, 1, 100, 4));
	EXPECT_NE(generate_ops(42, 0, 100, 4), generate_ops(43, 0, 100, 4));
	// Neighbouring seeds must not give shifted copies of one sequence.
	Rng a(thread_seed(1, 0)), b(thread_seed(2, 0));
	std::set<std::uint64_t> first;
	for (int i = 0; i < 1000; i++)
		first.insert(a.next());
	int shared = 0;
	for (int i = 0; i < 1000; i++)
		shared += first.count(b.next()) ? 1 : 0;
	EXPECT_EQ(shared, 0);
}

TEST(FuzzOps, PrefixIsStableWhenMoreOperationsAreAsked)
{
	auto shorter = generate_ops(7, 1, 100, 3);
	auto longer = generate_ops(7, 1, 300, 3);
	ASSERT_EQ(longer.size(), 300u);
	EXPECT_TRUE(std::equal(shorter.begin(), shorter.end(), longer.begin()));
}

TEST(FuzzOps, EveryKindAppearsAndDevicesStayInRange)
{
	auto ops = generate_ops(1, 0, 20000, 5);
	std::set<OpKind> kinds;
	for (const Op &op : ops) {
		kinds.insert(op.kind);
		EXPECT_LT(op.dev, 5u);
	}
	EXPECT_EQ(kinds.size(), kNumOpKinds);
}

TEST(FuzzOps, StateTargetsAreMostlyValidButNotOnly)
{
	int valid = 0, invalid = 0;
	for (const Op &op : generate_ops(9, 0, 20000, 1)) {
		if (op.kind != OpKind::SetState)
			continue;
		(op.a >= 1 && op.a <= 7 ? valid : invalid)++;
	}
	EXPECT_GT(valid, 3 * invalid);
	EXPECT_GT(invalid, 0);
}

TEST(FuzzOps, OperationsSplitOverThreadsWithoutLoss)
{
	std::size_t sum = 0;
	for (unsigned t = 0; t < 3; t++)
		sum += ops_for_thread(100001, 3, t);
	EXPECT_EQ(sum, 100001u);
	EXPECT_EQ(ops_for_thread(10, 3, 0), 4u);
	EXPECT_EQ(ops_for_thread(10, 3, 2), 3u);
}

TEST(FuzzOps, EncodingRoundTripsAndRejectsJunk)
{
	for (const Op &op : generate_ops(5, 0, 2000, 4)) {
		auto back = decode(encode(op));
		ASSERT_TRUE(back.has_value()) << encode(op);
		EXPECT_EQ(*back, op) << encode(op);
	}
	EXPECT_FALSE(decode("SET_STATE 0 1 2 3"));
	EXPECT_FALSE(decode("NO_SUCH_OP 0 1 2 3 4"));
	EXPECT_FALSE(decode("SET_STATE 0 1 2 3 4 5"));
}

TEST(FuzzOps, DescriptionsNameTheOperationAndItsArguments)
{
	Op set{OpKind::SetState, 2, 3, 0, 0, 0};
	EXPECT_EQ(describe(set), "dev2 SET_STATE target=STOP_COPY");
	Op rd{OpKind::Read, 0, 1, 4096, 1, 0};
	EXPECT_EQ(describe(rd), "dev0 READ slot 1 size 4096 bad-pointer");
	Op reg{OpKind::RegionRead, 1, 0, 12, 4, 0};
	EXPECT_EQ(describe(reg), "dev1 REGION_READ BAR0 +0xc size 4");
}
