// pin / unpin with owners.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/kv/kv_cache_manager.h"
#include "kv_test_util.h"

namespace mnemo::engine::kv {
namespace {

using testing::append_and_write;
using testing::iota_tokens;

TEST(KvPin, PinnedBlocksOutliveTheirSequenceAndAreNeverReused) {
  KvCacheManager kv(testing::small_config(3, 1));
  auto tokens = iota_tokens(8);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 8));
  kv.pin(s, /*owner=*/7);
  EXPECT_EQ(kv.stats(0).pinned, 2);
  kv.free(s);
  EXPECT_EQ(kv.stats(0).used, 2);
  EXPECT_EQ(kv.num_free_blocks(), 1);
  SeqId other = kv.create();
  EXPECT_FALSE(kv.append(other, iota_tokens(5, 900))) << "only one unpinned block";
  kv.unpin(7);
  EXPECT_FALSE(kv.has_pins(7));
  EXPECT_EQ(kv.stats(0).cached, 2);
  PrefixMatch m = kv.match_prefix(iota_tokens(9), 0);
  EXPECT_EQ(m.num_tokens, 8);
  kv.release(std::move(m));
  kv.check_invariants();
}

TEST(KvPin, WritingAfterAPinCopiesThePinnedBlock) {
  KvCacheManager kv(testing::small_config(6, 1));
  auto tokens = iota_tokens(7);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 6));
  kv.pin(s, 1);
  int32_t last = kv.layer_blocks(s, 0).blocks[1];
  const auto* block = static_cast<const uint8_t*>(kv.k_block(0, last));
  std::vector<uint8_t> before(block, block + kv.config().elems_per_half() * kv.config().elem_bytes());
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 6, 1));
  EXPECT_NE(kv.layer_blocks(s, 0).blocks[1], last);
  EXPECT_EQ(0, std::memcmp(before.data(), kv.k_block(0, last), before.size()));
  kv.check_invariants();
}

TEST(KvPin, OwnersAreIndependent) {
  KvCacheManager kv(testing::small_config(4, 1));
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, iota_tokens(4), 0, 4));
  kv.pin(s, 1);
  kv.pin(s, 2);
  kv.free(s);
  kv.unpin(1);
  EXPECT_EQ(kv.stats(0).pinned, 1);
  kv.unpin(2);
  EXPECT_EQ(kv.stats(0).used, 0);
  kv.unpin(3);  // unknown owner: nothing to do
  kv.check_invariants();
}

}  // namespace
}  // namespace mnemo::engine::kv
