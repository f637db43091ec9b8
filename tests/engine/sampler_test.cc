#include "engine/sampling/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
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

TEST(Sampler, FrequencyAndPresencePenaltiesFollowOpenAIsFormulaOverGeneratedTokens) {
  SamplingParams p;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  Sampler s(p);
  std::vector<float> l{1.0f, 2.0f, 3.0f, 4.0f};
  // Prompt {3, 3}, then generated {0, 0, 1}: the prompt's token 3 is not penalized.
  const std::vector<int32_t> history{3, 3, 0, 0, 1};
  EXPECT_EQ(s.sample(l, history, 2), 3);
  EXPECT_FLOAT_EQ(l[0], 1.0f - 2 * 0.5f - 0.25f);  // count 2
  EXPECT_FLOAT_EQ(l[1], 2.0f - 1 * 0.5f - 0.25f);  // count 1
  EXPECT_FLOAT_EQ(l[2], 3.0f);                     // never generated
  EXPECT_FLOAT_EQ(l[3], 4.0f);                     // only in the prompt
}

TEST(Sampler, FrequencyGrowsWithTheCountPresenceDoesNot) {
  const std::vector<int32_t> generated{0, 0, 0, 1};
  SamplingParams f;
  f.frequency_penalty = 1.0f;
  SamplingParams pr;
  pr.presence_penalty = 1.0f;
  std::vector<float> lf{0.0f, 0.0f, 0.0f}, lp{0.0f, 0.0f, 0.0f};
  Sampler(f).sample(lf, generated);
  Sampler(pr).sample(lp, generated);
  EXPECT_EQ(lf, (std::vector<float>{-3.0f, -1.0f, 0.0f}));
  EXPECT_EQ(lp, (std::vector<float>{-1.0f, -1.0f, 0.0f}));

  // Negative values encourage repetition.
  f.frequency_penalty = -2.0f;
  std::vector<float> neg{0.0f, 0.0f, 0.0f};
  EXPECT_EQ(Sampler(f).sample(neg, generated), 0);
  EXPECT_FLOAT_EQ(neg[0], 6.0f);
}

TEST(Sampler, FrequencyPenaltyReshapesTheSampledDistribution) {
  // Two equally likely tokens; token 0 generated once with frequency ln 3:
  // its weight drops to a third, so p(0) = (1/3) / (1/3 + 1) = 0.25.
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 5;
  p.frequency_penalty = float(std::log(3.0));
  Sampler s(p);
  const std::vector<int32_t> generated{0};
  int zeros = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<float> l{0.0f, 0.0f};
    zeros += s.sample(l, generated) == 0;
  }
  EXPECT_NEAR(zeros / 20000.0, 0.25, 0.015);
}

TEST(Sampler, LogitBiasMinus100BansAndPlus100Forces) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 11;
  p.logit_bias = {{0, -100.0f}};
  const std::vector<float> l{5.0f, 0.0f, 0.0f};  // token 0 would be drawn ~99% of the time
  auto h = histogram(p, l, 5000);
  EXPECT_EQ(h.count(0), 0u);
  EXPECT_GT(h[1], 2000);
  EXPECT_GT(h[2], 2000);

  p.logit_bias = {{2, 100.0f}};
  h = histogram(p, l, 5000);
  EXPECT_EQ(h[2], 5000);

  // Greedy too, and the bias is added to the row in place.
  SamplingParams g;
  g.logit_bias = {{1, 2.0f}, {0, -1.0f}};
  std::vector<float> row = l;
  EXPECT_EQ(Sampler(g).sample(row, {}), 0);  // 4 > 2
  EXPECT_EQ(row, (std::vector<float>{4.0f, 2.0f, 0.0f}));
}

void expect_rejected(const SamplingParams& p, const std::string& naming, int64_t vocab = 0) {
  try {
    p.validate(vocab);
    ADD_FAILURE() << "accepted, expected an error naming " << naming;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(naming), std::string::npos) << e.what();
  }
}

TEST(Sampler, RejectsOutOfRangePenaltiesBiasesAndLogprobs) {
  SamplingParams p;
  p.frequency_penalty = 2.5f;
  expect_rejected(p, "frequency_penalty");
  p = {};
  p.presence_penalty = -2.01f;
  expect_rejected(p, "presence_penalty");
  p.presence_penalty = NAN;
  expect_rejected(p, "presence_penalty");
  p = {};
  p.logit_bias = {{5, 100.5f}};
  expect_rejected(p, "logit_bias of token 5");
  p.logit_bias = {{-1, 1.0f}};
  expect_rejected(p, "logit_bias token -1");
  p.logit_bias = {{400, 1.0f}};
  EXPECT_NO_THROW(p.validate());  // without a vocabulary size, any id >= 0
  expect_rejected(p, "logit_bias token 400 is outside the vocabulary of 400", 400);
  p = {};
  p.logprobs = true;
  p.top_logprobs = 21;
  expect_rejected(p, "top_logprobs");
  p.top_logprobs = -1;
  expect_rejected(p, "top_logprobs");
  p.logprobs = false;
  p.top_logprobs = 3;
  expect_rejected(p, "top_logprobs requires logprobs");

  // The edges of every range are valid.
  p = {};
  p.frequency_penalty = -2.0f;
  p.presence_penalty = 2.0f;
  p.logit_bias = {{0, -100.0f}, {399, 100.0f}};
  p.logprobs = true;
  p.top_logprobs = 20;
  EXPECT_NO_THROW(p.validate(400));
  EXPECT_NO_THROW(Sampler{p});
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
