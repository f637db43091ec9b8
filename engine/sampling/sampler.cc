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

  // Candidates sorted by logit, best first; the filters only cut the tail.
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b); };
  size_t keep = size_t(V);
  if (p_.top_k > 0 && size_t(p_.top_k) < keep) {
    keep = size_t(p_.top_k);
    std::partial_sort(idx.begin(), idx.begin() + ptrdiff_t(keep), idx.end(), by_logit);
  } else {
    std::sort(idx.begin(), idx.end(), by_logit);
  }
  std::vector<double> prob(keep);
  const double mx = logits[size_t(idx[0])] / p_.temperature;
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += prob[i] = std::exp(double(logits[size_t(idx[i])]) / p_.temperature - mx);
  for (double& q : prob) q /= sum;
  if (p_.top_p < 1.0f) {
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      cum += prob[n++];
      if (cum >= p_.top_p) break;
    }
    keep = std::max<size_t>(n, 1);
  }
  if (p_.min_p > 0.0f) {
    const double floor = prob[0] * p_.min_p;
    size_t n = 1;
    while (n < keep && prob[n] >= floor) ++n;
    keep = n;
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += prob[i];
  double r = std::uniform_real_distribution<double>(0, total)(rng_);
  for (size_t i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r <= 0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace mnemo::engine
