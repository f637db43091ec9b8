#pragma once
// Turns a logits row into the next token. The row is processed in place, in
// this order: logit_bias, repetition penalty (Hugging Face), frequency and
// presence penalties (OpenAI); then temperature, top-k, top-p, min-p (in the
// order Hugging Face applies them) pick the token, or greedy takes the argmax.
// The additive steps commute; the multiplicative repetition penalty comes
// before the subtractions, as in vLLM.
#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <vector>

namespace mnemo::engine {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  float repetition_penalty = 1.0f;  // 1: off; over the prompt and the generated tokens
  // OpenAI's penalties, in [-2, 2], over the tokens generated so far in this
  // request (not the prompt): logit[t] -= count[t] * frequency_penalty +
  // (count[t] > 0) * presence_penalty. 0: off.
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  // Token id -> bias in [-100, 100], added to that token's logit before
  // sampling: -100 in effect bans the token, +100 in effect forces it.
  std::map<int32_t, float> logit_bias;
  // Deliver with each generated token its log-probability and the
  // top_logprobs (0..20) most likely alternatives: see logprobs.h for which
  // distribution. top_logprobs > 0 requires logprobs, as in OpenAI's API.
  bool logprobs = false;
  int32_t top_logprobs = 0;
  uint64_t seed = 0;

  static constexpr int32_t kMaxTopLogprobs = 20;

  // Throws std::invalid_argument naming the parameter that is out of range.
  // With vocab_size > 0, logit_bias token ids must also be below it.
  void validate(int64_t vocab_size = 0) const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // logits is processed in place (bias and penalties; temperature and the
  // top-k/p filters are not written back), so after the call it holds the
  // row the token was drawn from at temperature 1. history holds the tokens
  // seen so far: the first prompt_len of them are the prompt, the rest were
  // generated (the frequency and presence penalties count only those).
  int32_t sample(std::span<float> logits, std::span<const int32_t> history, size_t prompt_len = 0);

 private:
  void apply_penalties(std::span<float> logits, std::span<const int32_t> generated);
  // The draw at temperature > 0: candidates best first, sorted only as far
  // as the filters and the draw reach (the whole vocabulary rarely).
  int32_t draw(std::span<const float> logits);

  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<int32_t> scratch_;  // the generated tokens sorted, reused across calls
  std::vector<int32_t> order_;    // candidate ids, best first up to what draw() sorted
};

}  // namespace mnemo::engine
