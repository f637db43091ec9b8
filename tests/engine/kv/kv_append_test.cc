// append / write / gather / fork / free / can_allocate / accounting.
#include <gtest/gtest.h>

#include "engine/kv/kv_cache_manager.h"
#include "kv_test_util.h"

namespace mnemo::engine::kv {
namespace {

using testing::append_and_write;
using testing::iota_tokens;
using testing::kv_value;
using testing::stored;

void expect_contents(const KvCacheManager& kv, SeqId s, uint64_t salt, const std::vector<int32_t>& tokens) {
  const KvConfig& c = kv.config();
  for (int64_t l = 0; l < c.layers; ++l)
    for (int64_t h = 0; h < c.kv_heads; ++h) {
      HeadCopy g = kv.gather(s, l, h);
      ASSERT_EQ(int64_t(g.positions.size()), kv.length(s, l));
      for (size_t i = 0; i < g.positions.size(); ++i) {
        int64_t p = g.positions[i];
        for (int64_t d = 0; d < c.head_dim; ++d) {
          ASSERT_EQ(g.k[i * c.head_dim + d], stored(c, kv_value(salt, tokens[p], p, l, h, d, false)))
              << l << " " << h << " " << i;
          ASSERT_EQ(g.v[i * c.head_dim + d], stored(c, kv_value(salt, tokens[p], p, l, h, d, true)));
        }
      }
    }
}

TEST(KvAppend, WritesLandInPagedSlotsAndGatherReadsThemBack) {
  KvCacheManager kv(testing::small_config(8));
  auto tokens = iota_tokens(10);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 7));
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 7, 3));
  EXPECT_EQ(kv.length(s, 0), 10);
  EXPECT_EQ(kv.layer_blocks(s, 1).blocks.size(), 3u);
  EXPECT_EQ(kv.stats(0).used, 3);
  expect_contents(kv, s, 0, tokens);
  // Layout: head h of slot i sits at block[i / 4] + (h * 4 + i % 4) * head_dim.
  LayerBlocks lb = kv.layer_blocks(s, 1);
  const float* k = static_cast<const float*>(kv.k_block(1, lb.blocks[2]));
  EXPECT_EQ(k[(1 * 4 + 1) * 4 + 3], kv_value(0, tokens[9], 9, 1, 1, 3, false));
  kv.check_invariants();
}

TEST(KvAppend, Bf16BlocksHoldHalfTheBytesRoundedToNearestEven) {
  // head_dim 20: one full 16-wide vector and a masked tail per row.
  KvConfig f32 = testing::small_config(6, 2, 2, 20), bf16 = testing::small_config(6, 2, 2, 20, 4, KvDType::BF16);
  EXPECT_EQ(2 * bf16.bytes_per_block(), f32.bytes_per_block());
  bf16.bytes_budget = f32.bytes_budget;  // the same bytes hold twice the blocks
  KvCacheManager kv(bf16);
  EXPECT_EQ(kv.allocator().num_blocks(), 12);
  EXPECT_EQ(kv.stats(0).bytes_per_block, f32.bytes_per_block() / 2);
  SeqId s = kv.create();
  auto tokens = iota_tokens(10);
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 10));
  expect_contents(kv, s, 0, tokens);
  // The stored bits are the scalar reference's (kernels/dtype.h) for every element.
  const auto lb = kv.layer_blocks(s, 1);
  for (int64_t i = 0; i < 10; ++i)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t d = 0; d < 20; ++d) {
        const auto* k = static_cast<const uint16_t*>(kv.k_block(1, lb.blocks[size_t(i / 4)]));
        ASSERT_EQ(k[(h * 4 + i % 4) * 20 + d], kernels::f32_to_bf16(kv_value(0, tokens[size_t(i)], i, 1, h, d, false)));
      }
  // A fork copies the shared partial block as bytes.
  SeqId child = kv.fork(s);
  ASSERT_TRUE(append_and_write(kv, child, 0, iota_tokens(11), 10, 1));
  expect_contents(kv, child, 0, iota_tokens(11));
  expect_contents(kv, s, 0, tokens);
  kv.check_invariants();
}

TEST(KvAppend, AllOrNothingWhenThePoolIsFull) {
  KvCacheManager kv(testing::small_config(3));
  SeqId s = kv.create();
  auto tokens = iota_tokens(13);
  AllocRequest too_many[] = {{s, 13}};
  AllocRequest fits[] = {{s, 12}};
  EXPECT_FALSE(kv.can_allocate(too_many));
  EXPECT_TRUE(kv.can_allocate(fits));
  EXPECT_FALSE(kv.append(s, tokens));
  EXPECT_EQ(kv.length(s, 0), 0);
  EXPECT_EQ(kv.num_free_blocks(), 3);
  AllocRequest two_new[] = {{SeqId{}, 8}, {SeqId{}, 5}};
  EXPECT_FALSE(kv.can_allocate(two_new));
  kv.check_invariants();
}

TEST(KvFork, ChildSharesBlocksAndCopiesThePartialLastBlockOnWrite) {
  KvCacheManager kv(testing::small_config(8));
  auto tokens = iota_tokens(6);
  SeqId parent = kv.create();
  ASSERT_TRUE(append_and_write(kv, parent, 0, tokens, 0, 6));
  SeqId child = kv.fork(parent);
  EXPECT_EQ(kv.stats(0).used, 2);
  EXPECT_EQ(kv.allocator().refs(0, kv.layer_blocks(child, 0).blocks[1]), 2);
  auto child_tokens = tokens;
  child_tokens.push_back(999);
  auto parent_tokens = tokens;
  parent_tokens.push_back(555);
  ASSERT_TRUE(append_and_write(kv, child, 0, child_tokens, 6, 1));
  ASSERT_TRUE(append_and_write(kv, parent, 0, parent_tokens, 6, 1));
  EXPECT_EQ(kv.layer_blocks(child, 0).blocks[0], kv.layer_blocks(parent, 0).blocks[0]);
  EXPECT_NE(kv.layer_blocks(child, 0).blocks[1], kv.layer_blocks(parent, 0).blocks[1]);
  expect_contents(kv, child, 0, child_tokens);
  expect_contents(kv, parent, 0, parent_tokens);
  kv.check_invariants();
  kv.free(child);
  kv.free(parent);
  EXPECT_EQ(kv.stats(0).used, 0);
  kv.check_invariants();
}

TEST(KvFree, BlocksOfAFinishedSequenceReturnTailFirst) {
  KvCacheManager kv(testing::small_config(6, /*layers=*/3));
  auto tokens = iota_tokens(12);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 12));
  auto blocks = std::vector<int32_t>(kv.layer_blocks(s, 0).blocks.begin(), kv.layer_blocks(s, 0).blocks.end());
  kv.free(s);
  // The LRU evicts from the front: the last block goes first, the first last.
  EXPECT_EQ(kv.allocator().lru_order(), (std::vector<int32_t>{blocks[2], blocks[1], blocks[0]}));
  PoolStats st = kv.stats(0);
  EXPECT_EQ(st.cached, 3);
  EXPECT_EQ(st.free, 6);
  EXPECT_EQ(st.used, 0);
  EXPECT_EQ(st.bytes_per_block, kv.bytes_per_block());
  kv.check_invariants();
}

}  // namespace
}  // namespace mnemo::engine::kv
