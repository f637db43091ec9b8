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

// The slots one head holds, read back: positions and K,V from the tokens.
void expect_head(const KvCacheManager& kv, SeqId s, int64_t layer, int64_t head, const std::vector<int32_t>& tokens,
                 const std::vector<int32_t>& want_positions) {
  HeadCopy g = kv.gather(s, layer, head);
  ASSERT_EQ(g.positions, want_positions) << "layer " << layer << " head " << head;
  const int64_t hd = kv.config().head_dim;
  ASSERT_EQ(g.k.size(), want_positions.size() * size_t(hd));
  for (size_t i = 0; i < want_positions.size(); ++i)
    for (int64_t d = 0; d < hd; ++d) {
      const int32_t p = want_positions[i];
      ASSERT_EQ(g.k[i * size_t(hd) + size_t(d)], kv_value(0, tokens[size_t(p)], p, layer, head, d, false));
      ASSERT_EQ(g.v[i * size_t(hd) + size_t(d)], kv_value(0, tokens[size_t(p)], p, layer, head, d, true));
    }
}

TEST(KvCompactUneven, AHeadKeepingFewerGetsAHoleThatAppendsGoAfter) {
  KvCacheManager kv(testing::small_config(8));
  auto tokens = iota_tokens(12);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 11));
  EXPECT_TRUE(kv.hole(s, 1, 0).empty()) << "an uncompacted layer has no hole";
  ASSERT_TRUE(kv.compact(s, 1, std::vector<std::vector<int32_t>>{{0, 3, 5, 6, 9, 10}, {2, 8}}));
  EXPECT_EQ(kv.length(s, 1), 6) << "the longest keep list";
  EXPECT_EQ(kv.layer_blocks(s, 1).blocks.size(), 2u);
  EXPECT_TRUE(kv.hole(s, 1, 0).empty());
  EXPECT_EQ(kv.hole(s, 1, 1), (Hole{2, 6}));
  EXPECT_TRUE(kv.hole(s, 0, 1).empty()) << "other layers are untouched";
  EXPECT_EQ(std::vector<int32_t>(kv.positions(s, 1, 1).begin(), kv.positions(s, 1, 1).end()),
            (std::vector<int32_t>{2, 8, -1, -1, -1, -1}));
  expect_head(kv, s, 1, 0, tokens, {0, 3, 5, 6, 9, 10});
  expect_head(kv, s, 1, 1, tokens, {2, 8});
  kv.check_invariants();
  // The next token lands after the hole, in both heads; the hole stays.
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 11, 1));
  EXPECT_EQ(kv.length(s, 1), 7);
  EXPECT_EQ(kv.hole(s, 1, 1), (Hole{2, 6}));
  expect_head(kv, s, 1, 0, tokens, {0, 3, 5, 6, 9, 10, 11});
  expect_head(kv, s, 1, 1, tokens, {2, 8, 11});
  kv.check_invariants();
}

TEST(KvCompactUneven, CompactingALayerWithAHoleRepacksEveryHead) {
  KvCacheManager kv(testing::small_config(8, 1));
  auto tokens = iota_tokens(16);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 10));
  ASSERT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{1, 2, 4, 7, 9}, {0, 6}}));
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 10, 3));  // slots 5, 6, 7 = tokens 10, 11, 12
  ASSERT_EQ(kv.hole(s, 0, 1), (Hole{2, 5}));
  // Head 1 keeps slots on both sides of its hole (and more than head 0 now):
  // the hole moves to head 0.
  ASSERT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0, 6}, {1, 5, 7}}));
  EXPECT_EQ(kv.length(s, 0), 3);
  EXPECT_EQ(kv.hole(s, 0, 0), (Hole{2, 3}));
  EXPECT_TRUE(kv.hole(s, 0, 1).empty());
  expect_head(kv, s, 0, 0, tokens, {1, 11});
  expect_head(kv, s, 0, 1, tokens, {6, 10, 12});
  kv.check_invariants();
  // A head may keep nothing: its whole history is a hole.
  ASSERT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{}, {0, 2}}));
  EXPECT_EQ(kv.hole(s, 0, 0), (Hole{0, 2}));
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 13, 1));
  expect_head(kv, s, 0, 0, tokens, {13});
  expect_head(kv, s, 0, 1, tokens, {6, 12, 13});
  kv.check_invariants();
  // Even counts again: no hole left anywhere.
  ASSERT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{2}, {1}}));
  EXPECT_TRUE(kv.hole(s, 0, 0).empty());
  EXPECT_TRUE(kv.hole(s, 0, 1).empty());
  expect_head(kv, s, 0, 0, tokens, {13});
  expect_head(kv, s, 0, 1, tokens, {12});
  kv.check_invariants();
}

TEST(KvCompactUneven, AHoleAloneCopiesNoSharedBlock) {
  // Room for the two sequences' shared blocks only: a copy would not fit.
  KvCacheManager kv(testing::small_config(2, 1));
  auto tokens = iota_tokens(8);
  SeqId a = kv.create();
  ASSERT_TRUE(append_and_write(kv, a, 0, tokens, 0, 8));
  SeqId b = kv.fork(a);
  ASSERT_TRUE(kv.compact(b, 0, std::vector<std::vector<int32_t>>{{0, 1, 2, 3, 4, 5}, {0, 1}}));
  EXPECT_EQ(kv.layer_blocks(b, 0).blocks[0], kv.layer_blocks(a, 0).blocks[0]) << "still shared";
  EXPECT_EQ(kv.hole(b, 0, 1), (Hole{2, 6}));
  expect_head(kv, a, 0, 1, tokens, {0, 1, 2, 3, 4, 5, 6, 7});
  expect_head(kv, b, 0, 1, tokens, {0, 1});
  kv.check_invariants();
}

TEST(KvCompactDeath, RejectsBadKeepLists) {
  KvCacheManager kv(testing::small_config(4, 1));
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, iota_tokens(4), 0, 4));
  EXPECT_DEATH((void)kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0, 1}}), "one keep list per KV head");
  EXPECT_DEATH((void)kv.compact(s, 0, std::vector<std::vector<int32_t>>{{1, 0}, {0, 1}}), "strictly increasing");
  EXPECT_DEATH((void)kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0, 4}, {0}}), "strictly increasing");
  ASSERT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0, 1, 3}, {2}}));
  ASSERT_EQ(kv.hole(s, 0, 1), (Hole{1, 3}));
  EXPECT_DEATH((void)kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0}, {0, 2}}), "names a slot in its head's hole");
  EXPECT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0, 2}, {0}}));
}

}  // namespace
}  // namespace mnemo::engine::kv
