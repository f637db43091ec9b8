// match_prefix: verified hits, tenant salts, collisions, eviction.
#include <gtest/gtest.h>

#include "engine/kv/kv_cache_manager.h"
#include "kv_test_util.h"

namespace mnemo::engine::kv {
namespace {

using testing::append_and_write;
using testing::iota_tokens;

SeqId run_cold(KvCacheManager& kv, const std::vector<int32_t>& tokens, uint64_t salt) {
  SeqId s = kv.create(salt);
  EXPECT_TRUE(append_and_write(kv, s, salt, tokens, 0, int64_t(tokens.size())));
  return s;
}

TEST(KvPrefix, HitReusesWholeBlocksButNeverTheLastToken) {
  KvCacheManager kv(testing::small_config(10));
  auto tokens = iota_tokens(12);
  kv.free(run_cold(kv, tokens, 0));
  PrefixMatch m = kv.match_prefix(tokens, 0);
  EXPECT_EQ(m.num_tokens, 8) << "12 tokens: the third block holds the last token, recomputed";
  auto longer = iota_tokens(13);
  PrefixMatch m2 = kv.match_prefix(longer, 0);
  EXPECT_EQ(m2.num_tokens, 12);
  kv.release(std::move(m2));
  SeqId s = kv.create(std::move(m));
  EXPECT_EQ(kv.length(s, 0), 8);
  EXPECT_EQ(kv.committed(s), 8);
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 8, 4));
  for (int64_t h = 0; h < 2; ++h) {
    // Same content as a cold run.
    KvCacheManager cold(testing::small_config(10));
    SeqId c = run_cold(cold, tokens, 0);
    EXPECT_EQ(kv.gather(s, 1, h).k, cold.gather(c, 1, h).k);
    EXPECT_EQ(kv.gather(s, 1, h).v, cold.gather(c, 1, h).v);
  }
  kv.check_invariants();
}

TEST(KvPrefix, DivergingSuffixMatchesOnlyTheCommonBlocks) {
  KvCacheManager kv(testing::small_config(10));
  auto a = iota_tokens(12);
  SeqId s = run_cold(kv, a, 0);  // still running: a hit shares its blocks
  auto b = a;
  b[5] = 7;
  PrefixMatch m = kv.match_prefix(b, 0);
  EXPECT_EQ(m.num_tokens, 4);
  EXPECT_EQ(m.blocks[0], kv.layer_blocks(s, 0).blocks[0]);
  EXPECT_EQ(kv.allocator().refs(0, m.blocks[0]), 2);
  kv.release(std::move(m));
  EXPECT_EQ(kv.allocator().refs(0, kv.layer_blocks(s, 0).blocks[0]), 1);
  kv.check_invariants();
}

TEST(KvPrefix, SaltIsolatesTenants) {
  KvCacheManager kv(testing::small_config(10));
  auto tokens = iota_tokens(9);
  kv.free(run_cold(kv, tokens, 1));
  EXPECT_EQ(kv.match_prefix(tokens, 2).num_tokens, 0);
  PrefixMatch m = kv.match_prefix(tokens, 1);
  EXPECT_EQ(m.num_tokens, 8);
  kv.release(std::move(m));
}

TEST(KvPrefix, HashCollisionIsCaughtByTokenVerification) {
  KvConfig c = testing::small_config(10);
  c.hash = [](uint64_t, std::span<const int32_t>, uint64_t) { return uint64_t(42); };  // everything collides
  KvCacheManager kv(c);
  auto a = iota_tokens(9, 100);
  auto b = iota_tokens(9, 500);
  kv.free(run_cold(kv, a, 0));
  EXPECT_EQ(kv.match_prefix(b, 0).num_tokens, 0) << "same hash, different tokens: no reuse";
  PrefixMatch m = kv.match_prefix(a, 0);
  EXPECT_EQ(m.num_tokens, 4) << "the second block's hash is taken by the first: only one is indexed";
  kv.release(std::move(m));
  // A colliding sequence still runs, its blocks just stay out of the index.
  SeqId s = run_cold(kv, b, 0);
  EXPECT_EQ(kv.prefix_index().size(), 1u);
  kv.free(s);
  kv.check_invariants();
}

TEST(KvPrefix, EvictionUnderPressureDropsTheOldestPrefixFirst) {
  KvCacheManager kv(testing::small_config(4, 1));
  auto a = iota_tokens(9, 100), b = iota_tokens(9, 300);
  kv.free(run_cold(kv, a, 0));  // 3 blocks; 2 full ones cached
  EXPECT_EQ(kv.prefix_index().size(), 2u);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, b, 0, 9));  // needs 3 of 4: one clean, then a's tail
  EXPECT_EQ(kv.stats(0).cached, 1);
  PrefixMatch m = kv.match_prefix(a, 0);
  EXPECT_EQ(m.num_tokens, 4) << "a's first block, freed last, survived";
  kv.release(std::move(m));
  kv.check_invariants();
}

TEST(KvPrefix, RacedDuplicatePrefixKeepsTheChainFindable) {
  KvCacheManager kv(testing::small_config(12, 1));
  auto tokens = iota_tokens(13);
  SeqId first = kv.create(), second = kv.create();
  std::vector<int32_t> head(tokens.begin(), tokens.begin() + 8);
  ASSERT_TRUE(append_and_write(kv, first, 0, tokens, 0, 8));
  ASSERT_TRUE(append_and_write(kv, second, 0, tokens, 0, 8));
  ASSERT_TRUE(append_and_write(kv, second, 0, tokens, 8, 5));
  kv.free(first);
  kv.free(second);
  PrefixMatch m = kv.match_prefix(tokens, 0);
  EXPECT_EQ(m.num_tokens, 12);
  kv.release(std::move(m));
  kv.check_invariants();
}

}  // namespace
}  // namespace mnemo::engine::kv
