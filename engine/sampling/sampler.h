#pragma once
// Turns a logits row into the next token: repetition penalty, temperature,
// top-k, top-p, min-p (in the order Hugging Face applies them), or greedy.
#include <cstdint>
#include <random>
#include <span>

namespace mnemo::engine {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  float repetition_penalty = 1.0f;  // 1: off
  uint64_t seed = 0;

  // Throws std::invalid_argument naming the parameter that is out of range.
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // logits is modified in place; history holds the tokens seen so far.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

}  // namespace mnemo::engine
