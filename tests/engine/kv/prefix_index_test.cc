#include "engine/kv/prefix_index.h"

#include <gtest/gtest.h>

namespace mnemo::engine::kv {
namespace {

TEST(PrefixIndex, HitNeedsSameTokensSaltAndParent) {
  PrefixIndex idx(4);
  std::vector<int32_t> t{1, 2, 3, 4};
  idx.insert(2, 77, ChainLink{}, t, 5);
  EXPECT_EQ(idx.find(77, ChainLink{}, t, 5), 2);
  EXPECT_EQ(idx.find(78, ChainLink{}, t, 5), -1);
  EXPECT_EQ(idx.find(77, ChainLink{}, t, 6), -1) << "another tenant's salt";
  EXPECT_EQ(idx.find(77, ChainLink{1, 0}, t, 5), -1) << "another parent";
  std::vector<int32_t> other{1, 2, 3, 5};
  EXPECT_EQ(idx.find(77, ChainLink{}, other, 5), -1) << "same hash, other tokens";
}

TEST(PrefixIndex, EraseBumpsGenerationSoChildrenStopMatching) {
  PrefixIndex idx(4);
  std::vector<int32_t> t{1, 2};
  idx.insert(0, 10, ChainLink{}, t, 0);
  ChainLink parent = idx.link(0);
  idx.insert(1, 11, parent, t, 0);
  idx.erase(0);
  idx.insert(0, 10, ChainLink{}, t, 0);  // same block id, new content generation
  EXPECT_EQ(idx.find(11, idx.link(0), t, 0), -1);
  EXPECT_EQ(idx.find(11, parent, t, 0), 1);
}

TEST(PrefixIndex, DefaultHashDependsOnEveryInput) {
  std::vector<int32_t> a{1, 2, 3}, b{1, 2, 4};
  EXPECT_NE(default_block_hash(0, a, 0), default_block_hash(0, b, 0));
  EXPECT_NE(default_block_hash(0, a, 0), default_block_hash(1, a, 0));
  EXPECT_NE(default_block_hash(0, a, 0), default_block_hash(0, a, 1));
  EXPECT_EQ(default_block_hash(9, a, 3), default_block_hash(9, a, 3));
}

}  // namespace
}  // namespace mnemo::engine::kv
