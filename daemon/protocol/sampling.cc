#include "daemon/protocol/sampling.h"

namespace mnemo::daemon::protocol {

Sampling merge(const Sampling& base, const Sampling& over) {
  Sampling out = base;
  auto take = [](auto& dst, const auto& src) {
    if (src) dst = src;
  };
  take(out.temperature, over.temperature);
  take(out.top_p, over.top_p);
  take(out.top_k, over.top_k);
  take(out.min_p, over.min_p);
  take(out.repetition_penalty, over.repetition_penalty);
  take(out.max_tokens, over.max_tokens);
  take(out.seed, over.seed);
  take(out.stop, over.stop);
  return out;
}

Json to_json_value(const Sampling& s) {
  Json j = Json::object();
  if (s.temperature) j["temperature"] = *s.temperature;
  if (s.top_p) j["top_p"] = *s.top_p;
  if (s.top_k) j["top_k"] = *s.top_k;
  if (s.min_p) j["min_p"] = *s.min_p;
  if (s.repetition_penalty) j["repetition_penalty"] = *s.repetition_penalty;
  if (s.max_tokens) j["max_tokens"] = *s.max_tokens;
  if (s.seed) j["seed"] = *s.seed;
  if (s.stop) j["stop"] = *s.stop;
  return j;
}

}  // namespace mnemo::daemon::protocol
