// The fuzzer's delta debugging: finds the elements a failure needs, keeps
// their order, and stops on its budget with a list that still fails.
#include <gtest/gtest.h>

#include <algorithm>

#include "shrink.hpp"

using namespace vfiomig::fuzz;

namespace {

std::vector<int> iota(int n)
{
	std::vector<int> v(n);
	for (int i = 0; i < n; i++)
		v[i] = i;
	return v;
}

bool contains(const std::vector<int> &v, int x)
{
	return std::find(v.begin(), v.end(), x) != v.end();
}

} // namespace

TEST(FuzzShrink, FindsTheTwoOperationsAFailureNeeds)
{
	// Fails when 17 comes before 830 (say SET PRE_COPY, then a bad read).
	auto fails = [](const std::vector<int> &v) {
		auto a = std::find(v.begin(), v.end(), 17), b = std::find(v.begin(), v.end(), 830);
		return a != v.end() && b != v.end() && a < b;
	};
	ShrinkStats st;
	auto out = ddmin<int>(iota(1000), fails, [] { return true; }, &st);
	EXPECT_EQ(out, (std::vector<int>{17, 830}));
	EXPECT_FALSE(st.exhausted);
	EXPECT_LT(st.tries, 200u);
}

TEST(FuzzShrink, KeepsASingleNecessaryOperation)
{
	auto out = ddmin<int>(iota(64), [](const auto &v) { return contains(v, 63); }, [] { return true; });
	EXPECT_EQ(out, std::vector<int>{63});
}

TEST(FuzzShrink, ResultIsOneMinimalForAnOrderedTriple)
{
	auto fails = [](const std::vector<int> &v) { return contains(v, 3) && contains(v, 50) && contains(v, 99); };
	auto out = ddmin<int>(iota(100), fails, [] { return true; });
	EXPECT_EQ(out, (std::vector<int>{3, 50, 99}));
}

TEST(FuzzShrink, StopsOnItsBudgetWithAFailingList)
{
	int calls = 0;
	auto fails = [&](const std::vector<int> &v) {
		calls++;
		return contains(v, 5) && contains(v, 900);
	};
	ShrinkStats st;
	auto out = ddmin<int>(iota(1000), fails, [&] { return calls < 12; }, &st);
	EXPECT_TRUE(st.exhausted);
	EXPECT_TRUE(fails(out));
	EXPECT_LT(out.size(), 1000u);
}
