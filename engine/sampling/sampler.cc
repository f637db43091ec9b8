#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace mnemo::engine {

void SamplingParams::validate(int64_t vocab_size) const {
  auto bad = [](const std::string& what) { throw std::invalid_argument(what); };
  if (!(temperature >= 0) || !std::isfinite(temperature)) bad("temperature must be >= 0");
  if (top_k < 0) bad("top_k must be >= 0");
  if (!(top_p > 0 && top_p <= 1)) bad("top_p must be in (0, 1]");
  if (!(min_p >= 0 && min_p <= 1)) bad("min_p must be in [0, 1]");
  if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty)) bad("repetition_penalty must be > 0");
  if (!(frequency_penalty >= -2 && frequency_penalty <= 2)) bad("frequency_penalty must be in [-2, 2]");
  if (!(presence_penalty >= -2 && presence_penalty <= 2)) bad("presence_penalty must be in [-2, 2]");
  for (const auto& [token, bias] : logit_bias) {
    const std::string t = std::to_string(token);
    if (token < 0) bad("logit_bias token " + t + " is not a token id");
    if (vocab_size > 0 && token >= vocab_size)
      bad("logit_bias token " + t + " is outside the vocabulary of " + std::to_string(vocab_size));
    if (!(bias >= -100 && bias <= 100)) bad("logit_bias of token " + t + " must be in [-100, 100]");
  }
  if (top_logprobs < 0 || top_logprobs > kMaxTopLogprobs)
    bad("top_logprobs must be in [0, " + std::to_string(kMaxTopLogprobs) + "]");
  if (top_logprobs > 0 && !logprobs) bad("top_logprobs requires logprobs");
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) { p_.validate(); }

void Sampler::apply_penalties(std::span<float> logits, std::span<const int32_t> generated) {
  // Sorted, equal tokens are adjacent: each run is one token and its count.
  scratch_.assign(generated.begin(), generated.end());
  std::sort(scratch_.begin(), scratch_.end());
  for (size_t i = 0; i < scratch_.size();) {
    size_t j = i;
    while (j < scratch_.size() && scratch_[j] == scratch_[i]) ++j;
    const int32_t t = scratch_[i];
    if (t >= 0 && size_t(t) < logits.size())
      logits[size_t(t)] -= float(j - i) * p_.frequency_penalty + p_.presence_penalty;
    i = j;
  }
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history, size_t prompt_len) {
  const int32_t V = int32_t(logits.size());
  for (const auto& [t, bias] : p_.logit_bias)
    if (t < V) logits[size_t(t)] += bias;
  if (p_.repetition_penalty != 1.0f) {
    std::vector<bool> seen(size_t(V), false);
    for (int32_t t : history)
      if (t >= 0 && t < V && !seen[size_t(t)]) {
        seen[size_t(t)] = true;
        float& l = logits[size_t(t)];
        l = l > 0 ? l / p_.repetition_penalty : l * p_.repetition_penalty;
      }
  }
  if ((p_.frequency_penalty != 0.0f || p_.presence_penalty != 0.0f) && prompt_len < history.size())
    apply_penalties(logits, history.subspan(prompt_len));
  if (p_.temperature == 0.0f) return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());

  return draw(logits);
}

int32_t Sampler::draw(std::span<const float> logits) {
  const size_t V = logits.size();
  const double T = p_.temperature;
  // Best first: higher logit, then lower id (a total order, so the result
  // is the same however far the sort went).
  auto by_logit = [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  };
  order_.resize(V);
  std::iota(order_.begin(), order_.end(), 0);
  size_t keep = V, sorted = 0;
  if (p_.top_k > 0 && size_t(p_.top_k) < V) {
    keep = size_t(p_.top_k);
    std::partial_sort(order_.begin(), order_.begin() + ptrdiff_t(keep), order_.end(), by_logit);
    sorted = keep;
  }
  // order_[0, n) best first, growing geometrically: a full sort of a 152k
  // vocabulary costs ~15 ms a token, and the filters and the draw mostly
  // stop within the first few hundred candidates.
  auto ensure = [&](size_t n) {
    if (n <= sorted) return;
    n = std::min(keep, std::max({n, 2 * sorted, size_t(64)}));
    if (n < keep) std::nth_element(order_.begin() + ptrdiff_t(sorted), order_.begin() + ptrdiff_t(n),
                                   order_.begin() + ptrdiff_t(keep), by_logit);
    std::sort(order_.begin() + ptrdiff_t(sorted), order_.begin() + ptrdiff_t(n), by_logit);
    sorted = n;
  };
  const double mx = *std::max_element(logits.begin(), logits.end()) / T;
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) {
    const int32_t t = keep == V ? int32_t(i) : order_[i];
    sum += std::exp(double(logits[size_t(t)]) / T - mx);
  }
  auto prob = [&](size_t i) {  // of the i-th best; order_[0, i] must be sorted
    return std::exp(double(logits[size_t(order_[i])]) / T - mx) / sum;
  };
  size_t cut = keep;
  double kept = 0;  // the mass of order_[0, cut) when a filter cut it
  if (p_.top_p < 1.0f) {
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      ensure(n + 1);
      cum += prob(n++);
      if (cum >= p_.top_p) break;
    }
    cut = std::max<size_t>(n, 1);
  }
  if (p_.min_p > 0.0f) {
    ensure(1);
    const double floor = prob(0) * p_.min_p;
    size_t n = 1;
    while (n < cut) {
      ensure(n + 1);
      if (prob(n) < floor) break;
      ++n;
    }
    cut = n;
  }
  if (cut < keep) {
    for (size_t i = 0; i < cut; ++i) kept += prob(i);
  } else {
    kept = 1.0;  // every candidate: the normalised mass is all of it
  }
  double r = std::uniform_real_distribution<double>(0, kept)(rng_);
  for (size_t i = 0; i < cut; ++i) {
    ensure(i + 1);
    r -= prob(i);
    if (r <= 0) return order_[i];
  }
  ensure(cut);
  return order_[cut - 1];
}

}  // namespace mnemo::engine
