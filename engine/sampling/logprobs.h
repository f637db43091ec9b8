#pragma once
// A generated token's log-probability and its most likely alternatives
// (OpenAI's `logprobs` / `top_logprobs`).
//
// Which distribution: the log-softmax of the row the sampler drew from at
// temperature 1, before top-k / top-p / min-p truncation: the model's logits
// after the request's own processing (a constraint's mask, logit_bias, the
// repetition, frequency and presence penalties). So the numbers do not move
// with temperature or the truncation filters (as OpenAI's do not), a token a
// grammar forbids never appears among the alternatives, and a -100 bias shows
// as the ban it is. vLLM's default (raw_logprobs) reports the model's row
// before any processing instead; we differ on purpose, and this choice also
// needs no copy of the row (Sampler::sample leaves it processed in place).
#include <cstdint>
#include <span>
#include <vector>

namespace mnemo::engine {

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;  // natural log; -inf for a token that could not be drawn
};

struct TokenLogprobs {
  TokenLogprob chosen;             // the generated token
  std::vector<TokenLogprob> top;   // the top_logprobs most likely, best first (ties: lower id first)
};

// One pass for the maximum, one for the normalizer (in double), one keeping
// the n best in a sorted array of at most n (n <= 20): O(V), no allocation
// besides out.top. row is the processed row described above.
TokenLogprobs token_logprobs(std::span<const float> row, int32_t chosen, int32_t n_top);

}  // namespace mnemo::engine
