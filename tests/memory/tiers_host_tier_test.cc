// HostTier: one entry per program under a byte budget, LRU eviction, and
// take() only hands out an entry whose tokens are a verified prefix.
#include <gtest/gtest.h>

#include "memory/tiers/host_tier.h"

namespace mnemo::memory::tiers {
namespace {

using Entry = engine::KvTier::Entry;

Entry entry(std::vector<int32_t> tokens, size_t kv_bytes, uint64_t salt = 0) {
  Entry e;
  e.tokens = std::move(tokens);
  e.salt = salt;
  e.kv.assign(kv_bytes, uint8_t(e.tokens.empty() ? 0 : e.tokens[0]));
  return e;
}

// What one entry of n tokens and kv_bytes costs the budget.
int64_t cost(size_t n, size_t kv_bytes) {
  HostTier t(int64_t(1) << 30);
  std::vector<int32_t> tokens(n, 1);
  t.put(1, entry(tokens, kv_bytes));
  return t.bytes();
}

TEST(HostTier, TakeVerifiesThePrefixAndSalt) {
  HostTier t(1 << 20);
  ASSERT_TRUE(t.put(7, entry({1, 2, 3, 4}, 100, 5)));
  const std::vector<int32_t> other = {1, 2, 9, 4, 5};
  EXPECT_FALSE(t.take(7, other, 5));               // a different prompt gets nothing
  const std::vector<int32_t> longer = {1, 2, 3, 4, 5, 6};
  EXPECT_FALSE(t.take(7, longer, 6));              // another tenant gets nothing
  const std::vector<int32_t> shorter = {1, 2, 3};
  EXPECT_FALSE(t.take(7, shorter, 5));             // the entry must be a prefix, not cover more
  EXPECT_EQ(t.size(), 1u);
  const auto e = t.take(7, longer, 5);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->tokens, (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(e->kv.size(), 100u);
  EXPECT_EQ(t.size(), 0u);  // taken means removed
  EXPECT_EQ(t.bytes(), 0);
  EXPECT_FALSE(t.take(7, longer, 5));
}

TEST(HostTier, ProgramsOwnEntryFirstElseTheLongestPrefix) {
  HostTier t(1 << 20);
  t.put(1, entry({1, 2}, 10));
  t.put(2, entry({1, 2, 3}, 10));
  t.put(3, entry({1, 2, 3, 4, 9}, 10));
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
  EXPECT_EQ(t.take(1, prompt, 0)->tokens.size(), 2u);  // its own, though shorter
  const auto longest = t.take(42, prompt, 0);           // the longest matching of any program
  ASSERT_TRUE(longest);
  EXPECT_EQ(longest->tokens.size(), 3u);
  EXPECT_EQ(longest->program, 2u);
  EXPECT_FALSE(t.take(42, prompt, 0));                  // {1,2,3,4,9} is no prefix
}

TEST(HostTier, LeastRecentlyUsedEvictedWithinTheBudget) {
  const int64_t one = cost(4, 1000);
  HostTier t(3 * one);
  for (uint64_t p = 1; p <= 3; ++p) ASSERT_TRUE(t.put(p, entry({int32_t(p), 0, 0, 0}, 1000)));
  EXPECT_EQ(t.bytes(), 3 * one);
  ASSERT_TRUE(t.put(4, entry({4, 0, 0, 0}, 1000)));  // evicts program 1, the oldest
  EXPECT_EQ(t.size(), 3u);
  EXPECT_LE(t.bytes(), t.budget());
  const std::vector<int32_t> p1 = {1, 0, 0, 0, 7}, p2 = {2, 0, 0, 0, 7};
  EXPECT_FALSE(t.take(1, p1, 0));
  EXPECT_TRUE(t.take(2, p2, 0));
  // A newer entry of a program replaces its older one.
  ASSERT_TRUE(t.put(3, entry({3, 0, 0, 0}, 500)));
  EXPECT_EQ(t.size(), 2u);
  // An entry larger than the whole budget is refused, and evicts nothing.
  EXPECT_FALSE(t.put(9, entry({9}, size_t(4 * one))));
  EXPECT_EQ(t.size(), 2u);
}

}  // namespace
}  // namespace mnemo::memory::tiers
