#include "memory/ttl/ttl_solver.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace mnemo::memory::ttl {
namespace {

// Each case lists the objective P(tau) * G - tau at every candidate, with
// G = T * eta + reload, so the expected argmax can be checked by eye.

TEST(TtlSolver, StepCdfPicksTheLargestGain) {
  std::vector<double> s{1, 2, 3};
  // G = 5: tau 0 -> 0, 1 -> 5/3 - 1 = 0.67, 2 -> 10/3 - 2 = 1.33, 3 -> 5 - 3 = 2.
  EXPECT_DOUBLE_EQ(solve_tau(s, 0, 0, 5), 3);
  // Same G through T * eta: T = 4, eta = 0.5, reload = 3.
  EXPECT_DOUBLE_EQ(solve_tau(s, 4, 0.5, 3), 3);
}

TEST(TtlSolver, ShortMassBeatsALongTail) {
  std::vector<double> s{1, 1, 1, 10};
  // G = 6: tau 1 -> 0.75 * 6 - 1 = 3.5, tau 10 -> 6 - 10 = -4.
  EXPECT_DOUBLE_EQ(solve_tau(s, 0, 0, 6), 1);
  // G = 40: tau 1 -> 29, tau 10 -> 30: waiting for the tail pays.
  EXPECT_DOUBLE_EQ(solve_tau(s, 0, 0, 40), 10);
}

TEST(TtlSolver, DuplicatesCountOnlyAtTheirLastCopy) {
  // If the first copy of 1 were a candidate with P = 1/4, G = 6 would give
  // 0.5; the real P(1) = 3/4 gives 3.5. Either way tau = 1, so check the
  // case where it matters: G = 1.5, P(1) * G - 1 = 0.125 > 0 (1/4 would be < 0).
  std::vector<double> s{1, 1, 1, 10};
  EXPECT_DOUBLE_EQ(solve_tau(s, 0, 0, 1.5), 1);
}

TEST(TtlSolver, TiesGoToTheSmallerTau) {
  // G = 3 on {1, 2, 3}: every candidate scores exactly 0 -> tau 0.
  EXPECT_DOUBLE_EQ(solve_tau(std::vector<double>{1, 2, 3}, 0, 0, 3), 0);
  // G = 36 on {1, 1, 1, 10}: tau 1 -> 27 - 1 = 26, tau 10 -> 36 - 10 = 26.
  EXPECT_DOUBLE_EQ(solve_tau(std::vector<double>{1, 1, 1, 10}, 0, 0, 36), 1);
  // Equal on paper, not in binary: 0.1 * 3 != 0.3 exactly.
  EXPECT_DOUBLE_EQ(solve_tau(std::vector<double>{0.1, 0.2, 0.3}, 0, 0, 0.3), 0);
}

TEST(TtlSolver, SmallReloadGivesZero) {
  // G = 1: tau 1 -> 1/3 - 1 < 0; nothing beats not pinning.
  EXPECT_DOUBLE_EQ(solve_tau(std::vector<double>{1, 2, 3}, 0, 0, 1), 0);
  EXPECT_DOUBLE_EQ(solve_tau(std::vector<double>{1, 2, 3}, 0, 0, 0), 0);
}

TEST(TtlSolver, NegativeEtaLowersTau) {
  std::vector<double> s{1, 1, 1, 10};
  // T = 10, reload = 30.
  // eta = 1: G = 40 -> tau 10 (30 vs 29).
  EXPECT_DOUBLE_EQ(solve_tau(s, 10, 1, 30), 10);
  // eta = 0: G = 30: tau 1 -> 21.5, tau 10 -> 20.
  EXPECT_DOUBLE_EQ(solve_tau(s, 10, 0, 30), 1);
  // eta = -1: G = 20: tau 1 -> 14, tau 10 -> 10.
  EXPECT_DOUBLE_EQ(solve_tau(s, 10, -1, 30), 1);
  // eta = -1, reload = 2: G = -8, any pin only loses.
  EXPECT_DOUBLE_EQ(solve_tau(s, 10, -1, 2), 0);
}

TEST(TtlSolver, ZeroDurationsCountAtTauZero) {
  std::vector<double> s{0, 0, 5};
  // G = 6: tau 0 -> 2/3 * 6 = 4, tau 5 -> 6 - 5 = 1.
  EXPECT_DOUBLE_EQ(solve_tau(s, 0, 0, 6), 0);
  // G = 30: tau 0 -> 20, tau 5 -> 25.
  EXPECT_DOUBLE_EQ(solve_tau(s, 0, 0, 30), 5);
}

TEST(TtlSolver, EmptyOrNonFiniteGivesZero) {
  EXPECT_DOUBLE_EQ(solve_tau({}, 10, 1, 100), 0);
  EXPECT_DOUBLE_EQ(solve_tau(std::vector<double>{1}, NAN, 1, 100), 0);
}

}  // namespace
}  // namespace mnemo::memory::ttl
