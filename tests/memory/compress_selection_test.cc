// Which slots a compaction keeps: head-wise top-k over a layer's flattened
// scores, uniform top-k per head, protection, ties, holes.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "memory/compress/selection.h"

namespace mnemo::memory::compress {
namespace {

constexpr float kHole = -INFINITY;
using K = KeepLists;

TEST(CompressSelection, HeadwiseTakesTheLayersTopOverAllHeads) {
  const HeadScores s{{5, 1, 4, 0}, {3, 2, 6, 7}};
  EXPECT_EQ(select_headwise(s, 4), (K{{0, 2}, {2, 3}}));
  EXPECT_EQ(select_headwise(s, 3), (K{{0}, {2, 3}}));
  EXPECT_EQ(select_headwise(s, 1), (K{{}, {3}}));
}

TEST(CompressSelection, HeadwiseLetsHeadsKeepDifferentCounts) {
  const HeadScores s{{9, 8, 7, 6}, {1, 2, 3, 0}};
  EXPECT_EQ(select_headwise(s, 4), (K{{0, 1, 2, 3}, {}}));
  EXPECT_EQ(select_headwise(s, 5), (K{{0, 1, 2, 3}, {2}}));
}

TEST(CompressSelection, UniformTakesEachHeadsTop) {
  EXPECT_EQ(select_uniform({{5, 1, 4, 0}, {3, 2, 6, 7}}, 2), (K{{0, 2}, {2, 3}}));
  EXPECT_EQ(select_uniform({{9, 8, 7, 6}, {1, 2, 3, 0}}, 2), (K{{0, 1}, {1, 2}}));
  EXPECT_EQ(select_uniform({{9, 8, 7, 6}, {1, 2, 3, 0}}, 0), (K{{}, {}}));
}

TEST(CompressSelection, TiesPreferTheMoreRecentSlotThenTheLowerHead) {
  EXPECT_EQ(select_uniform({{1, 1, 1, 1}}, 2), (K{{2, 3}}));
  EXPECT_EQ(select_headwise({{1, 1}, {1, 1}}, 3), (K{{0, 1}, {1}}));
  EXPECT_EQ(select_headwise({{1, 1}, {1, 1}}, 1), (K{{1}, {}}));
  // Deterministic: the same input gives the same answer every time.
  const HeadScores flat(4, std::vector<float>(50, 0.5f));
  const K first = select_headwise(flat, 77);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(select_headwise(flat, 77), first);
}

TEST(CompressSelection, HolesAreNeverKeptEvenUnderBudget) {
  const HeadScores s{{kHole, kHole, 5}, {1, 2, 3}};
  EXPECT_EQ(select_headwise(s, 6), (K{{2}, {0, 1, 2}}));
  EXPECT_EQ(select_headwise(s, 2), (K{{2}, {2}}));
  EXPECT_EQ(select_uniform(s, 3), (K{{2}, {0, 1, 2}}));
  EXPECT_EQ(select_uniform({{kHole, kHole}}, 1), (K{{}}));
}

TEST(CompressSelection, ALayerUnderBudgetKeepsEverything) {
  const HeadScores s{{0.1f, -3, 2}, {7, 7}};
  EXPECT_EQ(select_headwise(s, 5), (K{{0, 1, 2}, {0, 1}}));
  EXPECT_EQ(select_headwise(s, 100), (K{{0, 1, 2}, {0, 1}}));
  EXPECT_EQ(select_uniform(s, 3), (K{{0, 1, 2}, {0, 1}}));
}

TEST(CompressSelection, ProtectedSlotsRankAboveEveryOther) {
  const HeadScores s{{0, 9, 8, 1}, {4, 3, 2, 1}};
  const std::vector<std::vector<int32_t>> protect{{0}, {3}};
  EXPECT_EQ(select_uniform(s, 2, protect), (K{{0, 1}, {0, 3}}));
  EXPECT_EQ(select_headwise(s, 3, protect), (K{{0, 1}, {3}}));
  // More protected than the budget: the protected ones compete among themselves.
  EXPECT_EQ(select_uniform({{0, 5, 3}}, 1, std::vector<std::vector<int32_t>>{{0, 2}}), (K{{2}}));
}

TEST(CompressSelection, BadInputsThrow) {
  EXPECT_THROW(select_headwise({{1, NAN}}, 1), std::invalid_argument);
  EXPECT_THROW(select_uniform({{1, 2}}, -1), std::invalid_argument);
  EXPECT_THROW(select_uniform({{1, 2}}, 1, std::vector<std::vector<int32_t>>{{2}}), std::invalid_argument);
  EXPECT_THROW(select_headwise({{1, 2}, {3}}, 1, std::vector<std::vector<int32_t>>{{0}}), std::invalid_argument);
}

TEST(CompressSelection, KeepListsAreStrictlyIncreasingAndSizedToTheBudget) {
  HeadScores s(3, std::vector<float>(97));
  uint32_t x = 12345;
  for (auto& h : s)
    for (float& v : h) v = float((x = x * 1103515245u + 12345u) >> 20) / 4096.0f;
  s[1][10] = s[1][11] = kHole;
  for (int64_t budget : {0, 1, 13, 50, 200, 400}) {
    const K hw = select_headwise(s, budget), un = select_uniform(s, budget);
    int64_t total = 0;
    for (size_t h = 0; h < 3; ++h) {
      for (size_t i = 1; i < hw[h].size(); ++i) ASSERT_LT(hw[h][i - 1], hw[h][i]);
      for (size_t i = 1; i < un[h].size(); ++i) ASSERT_LT(un[h][i - 1], un[h][i]);
      EXPECT_EQ(int64_t(un[h].size()), std::min<int64_t>(budget, h == 1 ? 95 : 97));
      total += int64_t(hw[h].size());
    }
    EXPECT_EQ(total, std::min<int64_t>(budget, 3 * 97 - 2));
  }
  // Head-wise keeps exactly the largest scores: the smallest kept beats every dropped one.
  const K hw = select_headwise(s, 100);
  float lowest_kept = INFINITY, highest_dropped = -INFINITY;
  for (size_t h = 0; h < 3; ++h)
    for (size_t i = 0, j = 0; i < s[h].size(); ++i) {
      if (j < hw[h].size() && hw[h][j] == int32_t(i)) lowest_kept = std::min(lowest_kept, s[h][i]), ++j;
      else highest_dropped = std::max(highest_dropped, s[h][i]);
    }
  EXPECT_GE(lowest_kept, highest_dropped);
}

}  // namespace
}  // namespace mnemo::memory::compress
