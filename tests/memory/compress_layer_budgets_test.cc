// Layer budgets: proportional to (1 - sigma)^alpha, exact sums, floors.
#include <gtest/gtest.h>

#include <numeric>
#include <stdexcept>

#include "memory/compress/layer_budgets.h"

namespace mnemo::memory::compress {
namespace {

using B = std::vector<int64_t>;

int64_t sum(const B& b) { return std::accumulate(b.begin(), b.end(), int64_t(0)); }

TEST(CompressLayerBudgets, ProportionalToOneMinusSigmaSquared) {
  // Weights 1 and 0.25 over a total of 200.
  EXPECT_EQ(layer_budgets(std::vector<double>{0.0, 0.5}, 100), (B{160, 40}));
}

TEST(CompressLayerBudgets, AlphaShapesTheSplit) {
  // alpha 1: weights 1 and 0.5 -> 133.3 and 66.7; the remainder goes to the larger fraction.
  EXPECT_EQ(layer_budgets(std::vector<double>{0.0, 0.5}, 100, 1.0), (B{133, 67}));
  // alpha 0: every layer weighs the same.
  EXPECT_EQ(layer_budgets(std::vector<double>{0.0, 0.5, 0.9}, 100, 0.0), (B{100, 100, 100}));
}

TEST(CompressLayerBudgets, FloorHoldsAndTheRestIsRedistributed) {
  // Proportionally the last three would get about 3.9 each; the floor (100/4) holds them at 25.
  EXPECT_EQ(layer_budgets(std::vector<double>{0.0, 0.9, 0.9, 0.9}, 100), (B{325, 25, 25, 25}));
  // An explicit floor.
  EXPECT_EQ(layer_budgets(std::vector<double>{0.0, 0.9, 0.9, 0.9}, 100, 2.0, 40), (B{280, 40, 40, 40}));
  // Pinning one layer at the floor lowers the others' shares below it in turn.
  const B b = layer_budgets(std::vector<double>{0.0, 0.6, 0.7, 0.99}, 64);
  EXPECT_EQ(sum(b), 256);
  for (int64_t x : b) EXPECT_GE(x, 16);
  EXPECT_EQ(b[3], 16);
}

TEST(CompressLayerBudgets, EqualSensitivityIsUniform) {
  EXPECT_EQ(layer_budgets(std::vector<double>{1.0, 1.0, 1.0}, 10), (B{10, 10, 10}));
  EXPECT_EQ(layer_budgets(std::vector<double>{0.3, 0.3, 0.3, 0.3}, 7), (B{7, 7, 7, 7}));
  EXPECT_EQ(uniform_budgets(3, 12), (B{12, 12, 12}));
}

TEST(CompressLayerBudgets, IntegerSlotsSumExactly) {
  EXPECT_EQ(layer_budgets(std::vector<double>{0.1, 0.2, 0.3}, 7), (B{9, 7, 5}));
  uint32_t x = 7;
  for (int trial = 0; trial < 200; ++trial) {
    const size_t L = 1 + trial % 17;
    std::vector<double> sigma(L);
    for (double& s : sigma) s = double((x = x * 1664525u + 1013904223u) >> 8) / double(1u << 24);
    const int64_t M = 1 + trial * 37 % 1000;
    const double alpha = 0.5 * (trial % 5);
    const B b = layer_budgets(sigma, M, alpha);
    ASSERT_EQ(sum(b), M * int64_t(L)) << "trial " << trial;
    for (size_t l = 0; l < L; ++l) {
      ASSERT_GE(b[l], M / 4) << "trial " << trial;
      // A less similar (more sensitive) layer never gets fewer slots, beyond one of rounding.
      for (size_t k = 0; k < L; ++k)
        if (sigma[l] < sigma[k]) {
          ASSERT_GE(b[l] + 1, b[k]) << "trial " << trial;
        }
    }
  }
}

TEST(CompressLayerBudgets, BadInputsThrow) {
  EXPECT_THROW(layer_budgets(std::vector<double>{}, 10), std::invalid_argument);
  EXPECT_THROW(layer_budgets(std::vector<double>{0.5}, 0), std::invalid_argument);
  EXPECT_THROW(layer_budgets(std::vector<double>{0.5}, 10, -1.0), std::invalid_argument);
  EXPECT_THROW(layer_budgets(std::vector<double>{0.5, 0.1}, 10, 2.0, 11), std::invalid_argument);
}

}  // namespace
}  // namespace mnemo::memory::compress
