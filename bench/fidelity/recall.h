#pragma once
// Asks a conversation's questions against a sequence's (possibly compressed)
// KV cache: each question runs on a fork that is freed after, so every
// question sees the same history cache. Also times decode steps on it.
#include <cstdint>

#include "bench/fidelity/conversation.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/model/model.h"

namespace mnemo::bench::fidelity {

struct RecallResult {
  int64_t asked = 0;
  int64_t correct = 0;
  double min_margin = 0;  // smallest (value logit - best other logit) over correct answers
  double accuracy() const { return asked ? double(correct) / double(asked) : 0.0; }
};

// One question on a fork of `history`: whether the argmax is the fact's
// value, and by how much it wins (value logit - best other; negative when wrong).
bool answer(const engine::Model& model, engine::kv::KvCacheManager& kv, engine::kv::SeqId history, const Fact& f,
            double* margin);

RecallResult ask_questions(const engine::Model& model, engine::kv::KvCacheManager& kv, engine::kv::SeqId history,
                           const Conversation& c);

// Median seconds of one decode step (one token) over `steps` steps appended to
// a fork of `history` (freed after).
double decode_seconds_per_token(const engine::Model& model, engine::kv::KvCacheManager& kv,
                                engine::kv::SeqId history, int steps);

}  // namespace mnemo::bench::fidelity
