#include "memory/ttl/sliding_mean.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mnemo::memory::ttl {
namespace {

TEST(TtlSlidingMean, EmptyIsZero) {
  SlidingMean m;
  EXPECT_EQ(m.size(), 0u);
  EXPECT_DOUBLE_EQ(m.mean(), 0);
}

TEST(TtlSlidingMean, KeepsTheLastWindow) {
  SlidingMean m(3);
  m.add(1);
  m.add(2);
  EXPECT_DOUBLE_EQ(m.mean(), 1.5);
  m.add(3);
  m.add(4);  // 1 falls out
  EXPECT_EQ(m.size(), 3u);
  EXPECT_DOUBLE_EQ(m.mean(), 3);
}

TEST(TtlSlidingMean, IgnoresNonFinite) {
  SlidingMean m(3);
  m.add(2);
  m.add(NAN);
  m.add(INFINITY);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_DOUBLE_EQ(m.mean(), 2);
}

TEST(TtlSlidingMean, DefaultWindowIs64) {
  SlidingMean m;
  for (int i = 0; i < 100; ++i) m.add(i);
  EXPECT_EQ(m.size(), 64u);
  EXPECT_DOUBLE_EQ(m.mean(), (36 + 99) / 2.0);
}

}  // namespace
}  // namespace mnemo::memory::ttl
