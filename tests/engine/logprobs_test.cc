// token_logprobs against an independent log-softmax, the top-N order and
// size, and what a call costs on a vocabulary of a real model's size.
#include "engine/sampling/logprobs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

namespace mnemo::engine {
namespace {

// log(exp(x_t) / sum exp(x)) in long double, straight from the definition.
std::vector<double> reference_log_softmax(const std::vector<float>& row) {
  long double sum = 0;
  for (float x : row) sum += std::exp((long double)x);
  std::vector<double> out;
  for (float x : row) out.push_back(double(std::log(std::exp((long double)x) / sum)));
  return out;
}

std::vector<float> random_row(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> row(n);
  for (float& x : row) x = d(rng);
  return row;
}

TEST(Logprobs, EqualAnIndependentLogSoftmax) {
  std::vector<float> row = random_row(50, 1);
  row[7] = -INFINITY;  // masked by a constraint
  const auto ref = reference_log_softmax(row);
  for (int32_t chosen : {0, 13, 49}) {
    const TokenLogprobs lp = token_logprobs(row, chosen, 0);
    EXPECT_EQ(lp.chosen.token, chosen);
    EXPECT_NEAR(lp.chosen.logprob, ref[size_t(chosen)], 1e-5);
    EXPECT_TRUE(lp.top.empty());
  }
  EXPECT_EQ(token_logprobs(row, 7, 0).chosen.logprob, -INFINITY);
}

TEST(Logprobs, TopAreTheMostLikelySortedAndOfTheAskedSize) {
  const std::vector<float> row = random_row(50, 2);
  const auto ref = reference_log_softmax(row);
  std::vector<int32_t> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[size_t(a)] > row[size_t(b)]; });
  for (int32_t n : {1, 5, 20}) {
    const TokenLogprobs lp = token_logprobs(row, 3, n);
    ASSERT_EQ(lp.top.size(), size_t(n));
    for (size_t i = 0; i < lp.top.size(); ++i) {
      EXPECT_EQ(lp.top[i].token, order[i]) << "rank " << i;
      EXPECT_NEAR(lp.top[i].logprob, ref[size_t(order[i])], 1e-5);
      if (i > 0) {
        EXPECT_GE(lp.top[i - 1].logprob, lp.top[i].logprob);
      }
    }
  }
  // Probabilities of the whole row sum to 1.
  double total = 0;
  for (double l : ref) total += std::exp(l);
  EXPECT_NEAR(total, 1.0, 1e-9);
}

TEST(Logprobs, TiesKeepTheLowerIdFirstAndASmallRowGivesWhatItHas) {
  const std::vector<float> row{1.0f, 2.0f, 2.0f, 0.5f, 2.0f};
  const TokenLogprobs lp = token_logprobs(row, 0, 4);
  ASSERT_EQ(lp.top.size(), 4u);
  EXPECT_EQ(lp.top[0].token, 1);
  EXPECT_EQ(lp.top[1].token, 2);
  EXPECT_EQ(lp.top[2].token, 4);
  EXPECT_EQ(lp.top[3].token, 0);
  EXPECT_EQ(token_logprobs(row, 0, 20).top.size(), row.size());
}

// Not a timed assertion: prints the cost of one call on a Qwen-sized
// vocabulary, the work logprobs add to each generated token.
TEST(Logprobs, CostPerTokenOnA152kVocabulary) {
  const std::vector<float> row = random_row(151936, 3);
  const auto ref = reference_log_softmax(row);
  using Clock = std::chrono::steady_clock;
  for (int32_t n : {0, 5, 20}) {
    // The fastest of many calls: the build machines are shared and loaded.
    TokenLogprobs lp;
    double us = 1e30;
    for (int i = 0; i < 50; ++i) {
      const auto t0 = Clock::now();
      lp = token_logprobs(row, 42, n);
      us = std::min(us, std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    std::printf("token_logprobs, V=151936, top_logprobs=%d: %.1f us per token (best of 50)\n", n, us);
    EXPECT_NEAR(lp.chosen.logprob, ref[42], 1e-4);
    EXPECT_EQ(lp.top.size(), size_t(n));
  }
}

}  // namespace
}  // namespace mnemo::engine
