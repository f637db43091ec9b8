#include "memory/ttl/eta_stats.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace mnemo::memory::ttl {
namespace {

TEST(TtlEtaStats, UndefinedIsZero) {
  EtaStats e;
  EXPECT_DOUBLE_EQ(e.eta(), 0);
  EXPECT_EQ(e.programs(), 0);
  // One-turn programs only: N - k is always 0, no variance.
  for (int i = 0; i < 5; ++i) e.add_program(1);
  EXPECT_DOUBLE_EQ(e.eta(), 0);
  EXPECT_EQ(e.programs(), 5);
}

TEST(TtlEtaStats, IgnoresNonPositiveTurns) {
  EtaStats e;
  e.add_program(0);
  e.add_program(-3);
  EXPECT_EQ(e.programs(), 0);
}

TEST(TtlEtaStats, FixedTurnCountsGiveOne) {
  EtaStats e;
  for (int i = 0; i < 10; ++i) e.add_program(7);
  // k + (N - k) = 7 always: perfectly anti-correlated.
  EXPECT_NEAR(e.eta(), 1, 1e-9);
  EtaStats one;
  one.add_program(11);
  EXPECT_NEAR(one.eta(), 1, 1e-9);
}

TEST(TtlEtaStats, HandComputedMix) {
  // N = 1 and N = 3: pairs (1,0), (1,2), (2,1), (3,0).
  // mean k = 7/4, mean r = 3/4; cov = 4/4 - 21/16 = -5/16;
  // var k = 15/4 - 49/16 = 11/16; var r = 5/4 - 9/16 = 11/16 -> eta = 5/11.
  EtaStats e;
  e.add_program(1);
  e.add_program(3);
  EXPECT_NEAR(e.eta(), 5.0 / 11, 1e-12);
}

TEST(TtlEtaStats, HeavyTailGivesNegativeEta) {
  // Ten one-turn programs and one of ten turns: having served many turns
  // means being in the long program, so more turns are left.
  // n = 20, sum k = 65, sum r = 45, sum kr = 165, sum kk = 395, sum rr = 285:
  // cov = 8.25 - 7.3125 = 0.9375, var k = var r = 9.1875 -> eta = -5/49.
  EtaStats e;
  for (int i = 0; i < 10; ++i) e.add_program(1);
  e.add_program(10);
  EXPECT_NEAR(e.eta(), -5.0 / 49, 1e-12);
}

TEST(TtlEtaStats, GeometricTurnCountsGiveNearZero) {
  // p = 1/2: 2^(20-n) programs of n turns, n = 1..20 (truncated far out in
  // the tail), so turns left do not depend on turns served.
  EtaStats e;
  for (int n = 1; n <= 20; ++n)
    for (int64_t i = 0; i < (int64_t{1} << (20 - n)); ++i) e.add_program(n);
  EXPECT_NEAR(e.eta(), 0, 1e-3);
}

TEST(TtlEtaStats, JsonRoundTrip) {
  EtaStats e;
  e.add_program(1);
  e.add_program(3);
  e.add_program(8);
  EtaStats f;
  f.load(e.to_json());
  EXPECT_EQ(f.programs(), 3);
  EXPECT_DOUBLE_EQ(f.eta(), e.eta());
  // Streaming continues from the loaded sums.
  e.add_program(4);
  f.add_program(4);
  EXPECT_DOUBLE_EQ(f.eta(), e.eta());
}

TEST(TtlEtaStats, LoadRejectsJunkAndKeepsState) {
  EtaStats e;
  e.add_program(1);
  e.add_program(3);
  auto good = e.to_json();
  for (auto bad : {nlohmann::json(3), nlohmann::json::object(), nlohmann::json::array()}) {
    EXPECT_THROW(e.load(bad), std::invalid_argument);
  }
  auto j = good;
  j["sum_k"] = "x";
  EXPECT_THROW(e.load(j), std::invalid_argument);
  j = good;
  j["programs"] = -1;
  EXPECT_THROW(e.load(j), std::invalid_argument);
  j = good;
  j["sum_kr"] = -5.0;
  EXPECT_THROW(e.load(j), std::invalid_argument);
  j = good;
  j.erase("pairs");
  EXPECT_THROW(e.load(j), std::invalid_argument);
  EXPECT_EQ(e.programs(), 2);
  EXPECT_NEAR(e.eta(), 5.0 / 11, 1e-12);
}

}  // namespace
}  // namespace mnemo::memory::ttl
