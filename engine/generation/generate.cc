#include "engine/generation/generate.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "engine/generation/stop_matcher.h"

namespace mnemo::engine {

GenerateResult generate(const Model& model, const Tokenizer& tok, std::span<const int32_t> prompt,
                        const GenerateOptions& opt, const std::function<void(std::string_view)>& on_text) {
  if (prompt.empty()) throw std::invalid_argument("generate: the prompt has no tokens");
  if (opt.max_tokens < 0) throw std::invalid_argument("generate: max_tokens must be >= 0");
  using clock = std::chrono::steady_clock;
  Sampler sampler(opt.sampling);
  std::vector<int32_t> stops = opt.stop_ids;
  const auto& eos = model.config().eos_token_ids;
  if (!opt.ignore_eos) stops.insert(stops.end(), eos.begin(), eos.end());
  StopMatcher matcher(opt.stop_strings);
  Tokenizer::StreamDecoder decoder(tok);
  GenerateResult r;
  r.finish_reason = "length";
  auto emit = [&](const std::string& s) {
    if (s.empty()) return;
    r.text += s;
    if (on_text) on_text(s);
  };

  std::vector<int32_t> history(prompt.begin(), prompt.end());
  KvCache cache = model.new_cache(int64_t(prompt.size()) + opt.max_tokens);
  auto t0 = clock::now();
  std::vector<float> logits = model.forward(prompt, cache);
  r.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  t0 = clock::now();
  for (int32_t i = 0; i < opt.max_tokens; ++i) {
    const int32_t next = sampler.sample(logits, history, prompt.size());
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) {
      r.finish_reason = "stop";
      break;
    }
    r.tokens.push_back(next);
    history.push_back(next);
    emit(matcher.push(decoder.push(next)));
    if (matcher.stopped()) {
      r.finish_reason = "stop";
      break;
    }
    if (i + 1 < opt.max_tokens) logits = model.forward(std::span(&next, 1), cache);
  }
  if (!matcher.stopped()) emit(matcher.push(decoder.flush()));
  emit(matcher.flush());
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return r;
}

}  // namespace mnemo::engine
