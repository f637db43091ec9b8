#include "engine/sampling/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

namespace mnemo::engine {
namespace {

std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(p > 0 ? float(std::log(p)) : -INFINITY);
  return l;
}

std::map<int32_t, int> histogram(const SamplingParams& p, const std::vector<float>& logits, int draws) {
  Sampler s(p);
  std::map<int32_t, int> h;
  for (int i = 0; i < draws; ++i) {
    auto l = logits;
    ++h[s.sample(l, {})];
  }
  return h;
}

TEST(Sampler, GreedyPicksTheArgmax) {
  Sampler s(SamplingParams{});
  std::vector<float> l{0.1f, 2.5f, -1.0f, 2.4f};
  EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, TemperatureSamplesInProportion) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 7;
  const auto h = histogram(p, logits_of({0.6, 0.3, 0.1}), 20000);
  EXPECT_NEAR(h.at(0) / 20000.0, 0.6, 0.02);
  EXPECT_NEAR(h.at(1) / 20000.0, 0.3, 0.02);
  EXPECT_NEAR(h.at(2) / 20000.0, 0.1, 0.02);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDiffers) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  const auto l = logits_of({0.25, 0.25, 0.25, 0.25});
  Sampler a(p), b(p);
  p.seed = 43;
  Sampler c(p);
  int same_ab = 0, same_ac = 0;
  for (int i = 0; i < 200; ++i) {
    auto x = l, y = l, z = l;
    const int32_t ta = a.sample(x, {}), tb = b.sample(y, {}), tc = c.sample(z, {});
    same_ab += ta == tb;
    same_ac += ta == tc;
  }
  EXPECT_EQ(same_ab, 200);
  EXPECT_LT(same_ac, 120);
}

TEST(Sampler, TopKTopPAndMinPCutTheTail) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  auto h = histogram(p, logits_of({0.4, 0.3, 0.2, 0.1}), 5000);
  EXPECT_EQ(h.count(2) + h.count(3), 0u);
  EXPECT_NEAR(h.at(0) / 5000.0, 0.4 / 0.7, 0.03);

  p.top_k = 0;
  p.top_p = 0.75f;  // 0.4 + 0.3 = 0.7 < 0.75, so the third token stays
  h = histogram(p, logits_of({0.4, 0.3, 0.2, 0.1}), 5000);
  EXPECT_EQ(h.count(3), 0u);
  EXPECT_GT(h.count(2), 0u);

  p.top_p = 1.0f;
  p.min_p = 0.6f;  // keep tokens with p >= 0.6 * 0.4 = 0.24
  h = histogram(p, logits_of({0.4, 0.3, 0.2, 0.1}), 5000);
  EXPECT_EQ(h.count(2) + h.count(3), 0u);
  EXPECT_GT(h.count(1), 0u);
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l{3.0f, 2.0f, -1.0f};
  const std::vector<int32_t> seen{0};
  EXPECT_EQ(s.sample(l, seen), 1);  // 3/2 = 1.5 < 2
  EXPECT_FLOAT_EQ(l[0], 1.5f);
  std::vector<float> neg{-1.0f, -1.5f};
  const std::vector<int32_t> seen0{0};
  EXPECT_EQ(s.sample(neg, seen0), 1);  // -1 * 2 = -2 < -1.5
}

TEST(Sampler, RejectsOutOfRangeParameters) {
  SamplingParams p;
  p.top_p = 0.0f;
  EXPECT_THROW(Sampler{p}, std::invalid_argument);
  p = {};
  p.temperature = -1.0f;
  EXPECT_THROW(Sampler{p}, std::invalid_argument);
  p = {};
  p.repetition_penalty = 0.0f;
  EXPECT_THROW(Sampler{p}, std::invalid_argument);
}

}  // namespace
}  // namespace mnemo::engine
