#include "memory/ttl/reload_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace mnemo::memory::ttl {
namespace {

void expect_monotone_non_negative(const ReloadModel& m, int64_t up_to) {
  double prev = m.predict(0);
  EXPECT_GE(prev, 0);
  for (int64_t t = 1; t <= up_to; t += up_to / 1000 + 1) {
    const double v = m.predict(t);
    EXPECT_GE(v, prev) << "at " << t << " tokens";
    prev = v;
  }
}

TEST(TtlReloadModel, EmptyPredictsZero) {
  ReloadModel m;
  EXPECT_EQ(m.size(), 0u);
  EXPECT_DOUBLE_EQ(m.predict(1000), 0);
}

TEST(TtlReloadModel, RecoversAKnownQuadratic) {
  const double a = 0.01, b = 2e-5, c = 3e-9;
  auto f = [&](double t) { return a + b * t + c * t * t; };
  ReloadModel m;
  for (int64_t t = 256; t <= 8192; t *= 2) m.add(t, f(static_cast<double>(t)));
  auto k = m.coefficients();
  EXPECT_NEAR(k[0], a, 1e-9);
  EXPECT_NEAR(k[1], b, 1e-12);
  EXPECT_NEAR(k[2], c, 1e-15);
  EXPECT_NEAR(m.predict(3000), f(3000), 1e-9);
  EXPECT_NEAR(m.predict(20000), f(20000), 1e-7);  // extrapolates the curve
}

TEST(TtlReloadModel, OnePromptLengthIsProportional) {
  ReloadModel m;
  m.add(1000, 0.4);
  m.add(1000, 0.6);
  EXPECT_DOUBLE_EQ(m.predict(1000), 0.5);
  EXPECT_DOUBLE_EQ(m.predict(2000), 1.0);
  EXPECT_DOUBLE_EQ(m.predict(0), 0);
}

TEST(TtlReloadModel, TwoPromptLengthsAreLinearAndNeverNegative) {
  ReloadModel m;
  m.add(1000, 1);
  m.add(2000, 3);  // seconds = -1 + 0.002 t
  EXPECT_NEAR(m.predict(3000), 5, 1e-12);
  EXPECT_NEAR(m.predict(1500), 2, 1e-12);
  EXPECT_DOUBLE_EQ(m.predict(0), 0);  // -1 floored
  EXPECT_DOUBLE_EQ(m.predict(-5), 0);
}

TEST(TtlReloadModel, StaysMonotoneOnDecreasingData) {
  // Noisy warm-up measurements that fall with length: an unconstrained fit
  // would call a longer prompt cheaper.
  ReloadModel m;
  m.add(100, 1.0);
  m.add(200, 0.5);
  m.add(300, 0.4);
  expect_monotone_non_negative(m, 100000);
  EXPECT_NEAR(m.predict(200), (1.0 + 0.5 + 0.4) / 3, 1e-12);  // best monotone fit is flat
}

TEST(TtlReloadModel, StaysMonotoneOnConcaveData) {
  // sqrt-like: an unconstrained parabola bends down past the data.
  ReloadModel m;
  m.add(1000, 1.0);
  m.add(2000, 1.4);
  m.add(4000, 2.0);
  m.add(8000, 2.8);
  EXPECT_GE(m.coefficients()[1], 0);
  EXPECT_GE(m.coefficients()[2], 0);
  expect_monotone_non_negative(m, 1000000);
}

TEST(TtlReloadModel, HistoryIsBoundedAndFollowsTheNewest) {
  ReloadModel m(3);
  for (int i = 0; i < 5; ++i) m.add(1000, 100);  // stale calibration
  m.add(1000, 1);
  m.add(2000, 2);
  m.add(3000, 3);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_NEAR(m.predict(4000), 4, 1e-9);
}

TEST(TtlReloadModel, IgnoresBadMeasurements) {
  ReloadModel m;
  m.add(-1, 1);
  m.add(100, -1);
  m.add(100, NAN);
  m.add(100, INFINITY);
  EXPECT_EQ(m.size(), 0u);
}

}  // namespace
}  // namespace mnemo::memory::ttl
