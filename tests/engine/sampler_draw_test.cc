// The draw at temperature > 0 sorts only as far as it needs: it must pick
// exactly the token a full sort of the vocabulary would, for every filter.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "engine/sampling/sampler.h"

namespace mnemo::engine {
namespace {

// The draw as it was: every candidate sorted, then the filters, then the walk.
int32_t full_sort_draw(const SamplingParams& p, std::span<const float> logits, std::mt19937_64& rng) {
  const size_t V = logits.size();
  std::vector<int32_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  auto by = [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b); };
  std::sort(idx.begin(), idx.end(), by);
  size_t keep = p.top_k > 0 ? std::min(V, size_t(p.top_k)) : V;
  std::vector<double> prob(keep);
  const double mx = logits[size_t(idx[0])] / p.temperature;
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += prob[i] = std::exp(double(logits[size_t(idx[i])]) / p.temperature - mx);
  for (double& q : prob) q /= sum;
  if (p.top_p < 1.0f) {
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      cum += prob[n++];
      if (cum >= p.top_p) break;
    }
    keep = std::max<size_t>(n, 1);
  }
  if (p.min_p > 0.0f) {
    size_t n = 1;
    while (n < keep && prob[n] >= prob[0] * p.min_p) ++n;
    keep = n;
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += prob[i];
  double r = std::uniform_real_distribution<double>(0, total)(rng);
  for (size_t i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r <= 0) return idx[i];
  }
  return idx[keep - 1];
}

TEST(SamplerDraw, PicksWhatAFullSortPicksUnderEveryFilter) {
  std::mt19937 gen(11);
  std::normal_distribution<float> peaked(0, 4), flat(0, 0.3f);
  struct Case { float t, top_p, min_p; int32_t top_k; };
  const Case cases[] = {{1, 1, 0, 0},   {0.7f, 1, 0, 0}, {1, 0.9f, 0, 0}, {1, 0.5f, 0, 0}, {1, 1, 0.05f, 0},
                        {1, 1, 0, 40},  {0.8f, 0.95f, 0.02f, 100}, {1.5f, 0.99f, 0, 0}, {1, 1, 0, 5000}};
  int draws = 0;
  for (const Case& c : cases)
    for (bool is_flat : {false, true}) {
      std::vector<float> logits(32000);
      for (float& l : logits) l = is_flat ? flat(gen) : peaked(gen);
      logits[17] = logits[99];  // a tie, broken by id
      SamplingParams p;
      p.temperature = c.t;
      p.top_p = c.top_p;
      p.min_p = c.min_p;
      p.top_k = c.top_k;
      p.seed = 1234;
      Sampler s(p);
      std::mt19937_64 ref_rng(1234);
      for (int i = 0; i < 200; ++i, ++draws) {
        auto row = logits;
        ASSERT_EQ(s.sample(row, {}), full_sort_draw(p, logits, ref_rng))
            << "t=" << c.t << " top_p=" << c.top_p << " min_p=" << c.min_p << " top_k=" << c.top_k << " flat=" << is_flat
            << " draw " << i;
      }
    }
  EXPECT_EQ(draws, 18 * 200);
}

// Not a timed assertion: prints the cost a token pays, for the record.
TEST(SamplerDraw, PrintsTheCostPerTokenAgainstAFullSort) {
  std::mt19937 gen(3);
  std::normal_distribution<float> d(0, 3);
  std::vector<float> logits(151936);
  for (float& l : logits) l = d(gen);
  SamplingParams p;
  p.temperature = 1;
  p.top_p = 0.95f;
  Sampler s(p);
  std::mt19937_64 rng(1);
  auto time = [&](auto&& f) {
    std::vector<double> ms;
    for (int i = 0; i < 15; ++i) {
      auto row = logits;
      const auto t0 = std::chrono::steady_clock::now();
      f(row);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  const double lazy = time([&](std::vector<float>& row) { s.sample(row, {}); });
  const double full = time([&](std::vector<float>& row) { full_sort_draw(p, row, rng); });
  std::printf("draw at temperature 1, top_p 0.95, vocabulary 151936: %.2f ms lazily sorted, %.2f ms fully sorted (median of 15)\n",
              lazy, full);
  SUCCEED();
}

}  // namespace
}  // namespace mnemo::engine
