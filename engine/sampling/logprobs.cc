#include "engine/sampling/logprobs.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <limits>

#include "engine/sampling/sampler.h"

namespace mnemo::engine {

namespace {
// exp(x) for x <= 0, within a few ulp (Cephes' expf: x = k ln2 + r, a degree-6
// polynomial in r, 2^k put in the exponent bits). std::exp does not vectorize
// without -ffast-math and made a 152k-token row cost ~1 ms; this loop runs
// 8 lanes wide. Below -87 it returns ~1e-38 instead of underflowing: against
// the row's maximum term (1) that is nothing.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  const float k = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  return y * std::bit_cast<float>((int32_t(k) + 127) << 23);
}
}  // namespace

TokenLogprobs token_logprobs(std::span<const float> row, int32_t chosen, int32_t n_top) {
  assert(chosen >= 0 && size_t(chosen) < row.size());
  const size_t n = std::min(size_t(std::clamp(n_top, 0, SamplingParams::kMaxTopLogprobs)), row.size());
  // omp simd: the max and the sum may be reassociated across lanes.
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (size_t t = 0; t < row.size(); ++t) mx = std::max(mx, row[t]);
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (size_t t = 0; t < row.size(); ++t) sum += double(exp_nonpositive(row[t] - mx));
  // log-softmax(x) = x - (mx + log(sum)); the sampled token is finite, so mx is.
  const double lse = double(mx) + std::log(sum);
  auto lp = [&](size_t t) { return float(double(row[t]) - lse); };

  TokenLogprobs out;
  out.chosen = {chosen, lp(size_t(chosen))};
  if (n == 0) return out;
  // best[0..k) sorted by logit, highest first; a token enters only if it
  // beats the current last, so most of the row costs one comparison.
  std::array<int32_t, SamplingParams::kMaxTopLogprobs> best{};
  size_t k = 0;
  for (size_t t = 0; t < row.size(); ++t) {
    if (k == n && !(row[t] > row[size_t(best[k - 1])])) continue;
    size_t i = k < n ? k++ : n - 1;
    // Strictly greater moves up: equal logits keep the lower id first.
    while (i > 0 && row[t] > row[size_t(best[i - 1])]) {
      best[i] = best[i - 1];
      --i;
    }
    best[i] = int32_t(t);
  }
  out.top.reserve(k);
  for (size_t i = 0; i < k; ++i) out.top.push_back({best[i], lp(size_t(best[i]))});
  return out;
}

}  // namespace mnemo::engine
