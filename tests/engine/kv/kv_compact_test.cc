// compact(seq, layer, keep): per-head selection, block release, positions.
#include <gtest/gtest.h>

#include "engine/kv/kv_cache_manager.h"
#include "kv_test_util.h"

namespace mnemo::engine::kv {
namespace {

using testing::append_and_write;
using testing::iota_tokens;
using testing::kv_value;

TEST(KvCompact, HeadsKeepDifferentSlotsAndWholeBlocksAreFreed) {
  KvCacheManager kv(testing::small_config(8));
  auto tokens = iota_tokens(11);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 11));
  std::vector<std::vector<int32_t>> keep{{0, 3, 5, 10}, {1, 2, 8, 9}};
  ASSERT_TRUE(kv.compact(s, 1, keep));
  EXPECT_TRUE(kv.compacted(s));
  EXPECT_EQ(kv.length(s, 1), 4);
  EXPECT_EQ(kv.length(s, 0), 11);
  EXPECT_EQ(kv.layer_blocks(s, 1).blocks.size(), 1u);
  EXPECT_EQ(kv.stats(1).used, 1);
  EXPECT_EQ(kv.stats(0).used, 3);
  EXPECT_EQ(kv.stats(1).stranded, 2) << "layer 0 still uses those columns";
  for (int64_t h = 0; h < 2; ++h) {
    HeadCopy g = kv.gather(s, 1, h);
    EXPECT_EQ(g.positions, keep[h]);
    for (size_t i = 0; i < 4; ++i)
      EXPECT_EQ(g.k[i * 4 + 2], kv_value(0, tokens[keep[h][i]], keep[h][i], 1, h, 2, false));
  }
  EXPECT_TRUE(kv.positions(s, 0, 0).empty());
  // Decoding continues: the new token gets the next logical position in both layers.
  auto more = tokens;
  more.push_back(42);
  ASSERT_TRUE(append_and_write(kv, s, 0, more, 11, 1));
  EXPECT_EQ(kv.gather(s, 1, 0).positions.back(), 11);
  EXPECT_EQ(kv.gather(s, 1, 1).v[4 * 4 + 1], kv_value(0, 42, 11, 1, 1, 1, true));
  kv.check_invariants();
}

TEST(KvCompact, SharedBlocksAreCopiedAndCachedOnesLeaveTheIndex) {
  KvCacheManager kv(testing::small_config(10, 1));
  auto tokens = iota_tokens(8);
  SeqId a = kv.create();
  ASSERT_TRUE(append_and_write(kv, a, 0, tokens, 0, 8));
  SeqId b = kv.fork(a);
  int32_t first = kv.layer_blocks(a, 0).blocks[0];
  std::vector<std::vector<int32_t>> keep{{1, 2, 6}, {0, 5, 7}};
  ASSERT_TRUE(kv.compact(b, 0, keep));
  EXPECT_NE(kv.layer_blocks(b, 0).blocks[0], first);
  EXPECT_EQ(kv.gather(a, 0, 0).positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  PrefixMatch m = kv.match_prefix(iota_tokens(9), 0);
  EXPECT_EQ(m.num_tokens, 8) << "a's prefix is still cached";
  kv.release(std::move(m));
  kv.free(a);
  // Now compacting the sole owner rewrites indexed blocks in place.
  SeqId c = kv.create();
  ASSERT_TRUE(append_and_write(kv, c, 0, iota_tokens(8, 700), 0, 8));
  size_t indexed = kv.prefix_index().size();
  ASSERT_TRUE(kv.compact(c, 0, std::vector<std::vector<int32_t>>{{1, 3}, {2, 3}}));
  EXPECT_EQ(kv.prefix_index().size(), indexed - 1);
  kv.check_invariants();
}

TEST(KvCompact, AppendAfterKeepingAPrefixUnindexesTheReopenedBlock) {
  KvCacheManager kv(testing::small_config(8, 1));
  auto tokens = iota_tokens(13);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 12));
  ASSERT_EQ(kv.prefix_index().size(), 3u);
  ASSERT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0, 1, 2, 3, 4, 5}, {0, 1, 2, 3, 4, 5}}));
  EXPECT_EQ(kv.prefix_index().size(), 3u) << "nothing moved: contents still match";
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 12, 1));
  EXPECT_EQ(kv.prefix_index().size(), 2u) << "the second block was written into";
  EXPECT_EQ(kv.gather(s, 0, 1).positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 12}));
  kv.check_invariants();
}

TEST(KvCompact, RefusesWithoutRoomToCopyASharedBlock) {
  KvCacheManager kv(testing::small_config(2, 1));
  SeqId a = kv.create();
  ASSERT_TRUE(append_and_write(kv, a, 0, iota_tokens(8), 0, 8));
  SeqId b = kv.fork(a);
  EXPECT_FALSE(kv.compact(b, 0, std::vector<std::vector<int32_t>>{{1}, {2}}));
  EXPECT_FALSE(kv.compacted(b));
  EXPECT_EQ(kv.length(b, 0), 8);
  // Keeping a prefix of every head moves nothing, so nothing is copied.
  EXPECT_TRUE(kv.compact(b, 0, std::vector<std::vector<int32_t>>{{0, 1}, {0, 1}}));
  EXPECT_EQ(kv.layer_blocks(b, 0).blocks.size(), 1u);
  kv.check_invariants();
}

TEST(KvCompactDeath, RejectsUnequalCountsAndUnsortedKeeps) {
  KvCacheManager kv(testing::small_config(4, 1));
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, iota_tokens(4), 0, 4));
  EXPECT_DEATH((void)kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0, 1}, {2}}), "same count");
  EXPECT_DEATH((void)kv.compact(s, 0, std::vector<std::vector<int32_t>>{{1, 0}, {0, 1}}), "strictly increasing");
}

}  // namespace
}  // namespace mnemo::engine::kv
