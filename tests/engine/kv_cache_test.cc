#include "engine/model/kv_cache.h"

#include <gtest/gtest.h>

namespace mnemo::engine {
namespace {

TEST(KvCache, GrowingKeepsStoredPositions) {
  KvCache c(2, 3, 4, 2);
  std::vector<float> k(3 * 4), v(3 * 4);
  for (int64_t pos = 0; pos < 40; ++pos) {
    c.reserve_more(1);
    for (size_t i = 0; i < k.size(); ++i) k[i] = float(pos * 100 + int64_t(i)), v[i] = -k[i];
    for (int64_t l = 0; l < 2; ++l) kernels::cpu::kv_write(c.layer(l), pos, 1, k.data(), v.data());
    c.advance(1);
  }
  EXPECT_GE(c.capacity(), 40);
  for (int64_t l = 0; l < 2; ++l) {
    const auto kv = c.layer(l);
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t pos = 0; pos < 40; ++pos)
        for (int64_t d = 0; d < 4; ++d) {
          const float want = float(pos * 100 + h * 4 + d);
          ASSERT_EQ(kv.k[(h * kv.capacity + pos) * 4 + d], want);
          ASSERT_EQ(kv.v[(h * kv.capacity + pos) * 4 + d], -want);
        }
  }
  c.truncate(10);
  EXPECT_EQ(c.length(), 10);
}

}  // namespace
}  // namespace mnemo::engine
