#include "engine/kv/block_allocator.h"

#include <gtest/gtest.h>

#include "engine/kv/index_list.h"
#include "kv_test_util.h"

namespace mnemo::engine::kv {
namespace {

TEST(IndexList, PushPopRemoveInOrder) {
  IndexList list(8);
  for (int32_t i : {3, 1, 5, 7}) list.push_back(i);
  list.remove(5);
  EXPECT_EQ(list.to_vector(), (std::vector<int32_t>{3, 1, 7}));
  EXPECT_EQ(list.pop_front(), 3);
  EXPECT_FALSE(list.contains(3));
  EXPECT_TRUE(list.contains(7));
  list.remove(7);
  list.remove(1);
  EXPECT_TRUE(list.empty());
  list.push_back(2);
  EXPECT_EQ(list.front(), 2);
}

TEST(BlockAllocator, SizedFromByteBudget) {
  KvConfig c = testing::small_config(10, /*layers=*/3, /*kv_heads=*/2, /*head_dim=*/8, /*block_size=*/16);
  EXPECT_EQ(c.bytes_per_block(), 2 * 2 * 16 * 8 * 4);
  c.bytes_budget += c.bytes_per_block() - 1;  // a partial block is not a block
  BlockAllocator a(c);
  EXPECT_EQ(a.num_blocks(), 10);
  EXPECT_EQ(a.available_columns(), 10);
  PoolStats s = a.stats(0);
  EXPECT_EQ(s.used, 0);
  EXPECT_EQ(s.free, 10);
}

TEST(BlockAllocator, RejectsABudgetBelowOneBlockAndBadShapes) {
  KvConfig c = testing::small_config(1, 2);
  c.bytes_budget -= 1;
  EXPECT_THROW(BlockAllocator{c}, std::invalid_argument);
  KvConfig zero = testing::small_config(4);
  zero.layers = 0;
  EXPECT_THROW(BlockAllocator{zero}, std::invalid_argument);
}

TEST(BlockAllocator, ColumnUsedByOneLayerStrandsTheOthers) {
  BlockAllocator a(testing::small_config(4, 2));
  int32_t b = a.acquire_column({true, false});
  ASSERT_GE(b, 0);
  EXPECT_EQ(a.refs(0, b), 1);
  EXPECT_EQ(a.stranded(1), 1);
  // Layer 1 gets the stranded slot before any fresh column.
  EXPECT_EQ(a.acquire_in_layer(1), b);
  EXPECT_EQ(a.available_columns(), 3);
  a.unref(0, b);
  EXPECT_EQ(a.stranded(0), 1);
  EXPECT_FALSE(a.column_free(b));
  a.unref(1, b);
  EXPECT_TRUE(a.column_free(b));
  EXPECT_EQ(a.stranded(0), 0);
  EXPECT_EQ(a.available_columns(), 4);
  a.check_consistency();
}

TEST(BlockAllocator, CachedColumnsLeaveLruOldestFirstAndAreEvicted) {
  BlockAllocator a(testing::small_config(2, 1));
  std::vector<int32_t> evicted;
  a.on_evict = [&](int32_t b) { evicted.push_back(b); };
  int32_t x = a.acquire_column({true}), y = a.acquire_column({true});
  a.set_cached(x, true);
  a.set_cached(y, true);
  a.unref(0, y);
  a.unref(0, x);
  EXPECT_EQ(a.lru_order(), (std::vector<int32_t>{y, x}));
  EXPECT_EQ(a.stats(0).cached, 2);
  EXPECT_EQ(a.acquire_column({true}), y);  // no clean block left: evict the oldest
  EXPECT_EQ(evicted, std::vector<int32_t>{y});
  EXPECT_FALSE(a.cached(y));
  a.ref(0, x);  // a prefix hit revives x in place
  EXPECT_FALSE(a.in_lru(x));
  EXPECT_EQ(a.acquire_column({true}), -1);
  a.check_consistency();
}

TEST(BlockAllocator, PinnedBlockSurvivesLastUnref) {
  BlockAllocator a(testing::small_config(1, 1));
  int32_t b = a.acquire_column({true});
  a.pin(0, b);
  a.unref(0, b);
  EXPECT_EQ(a.stats(0).pinned, 1);
  EXPECT_EQ(a.stats(0).used, 1);
  EXPECT_EQ(a.acquire_column({true}), -1);
  a.unpin(0, b);
  EXPECT_EQ(a.available_columns(), 1);
  a.check_consistency();
}

TEST(BlockAllocatorDeath, DoubleFreeAborts) {
  BlockAllocator a(testing::small_config(1, 1));
  int32_t b = a.acquire_column({true});
  a.unref(0, b);
  EXPECT_DEATH(a.unref(0, b), "double free");
}

}  // namespace
}  // namespace mnemo::engine::kv
