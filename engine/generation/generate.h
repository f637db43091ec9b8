#pragma once
// One sequence's generation loop: prefill the prompt, then sample and decode
// token by token until a stop token, a stop string, or max_tokens.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/model/model.h"
#include "engine/sampling/sampler.h"
#include "engine/tokenizer/tokenizer.h"

namespace mnemo::engine {

struct GenerateOptions {
  SamplingParams sampling;
  int32_t max_tokens = 128;
  std::vector<std::string> stop_strings;
  std::vector<int32_t> stop_ids;  // in addition to the model's eos ids
  bool ignore_eos = false;        // keep going past the model's eos ids (benchmarks, tests)
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids, the stop token excluded
  std::string text;
  std::string finish_reason;  // "stop" or "length"
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

GenerateResult generate(const Model& model, const Tokenizer& tok, std::span<const int32_t> prompt,
                        const GenerateOptions& opt, const std::function<void(std::string_view)>& on_text = {});

}  // namespace mnemo::engine
