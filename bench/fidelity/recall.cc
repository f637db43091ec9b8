#include "bench/fidelity/recall.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <vector>

namespace mnemo::bench::fidelity {

namespace {

// Logits of the last of `tokens` appended to a fork of `history`.
std::vector<float> run_on_fork(const engine::Model& model, engine::kv::KvCacheManager& kv,
                               engine::kv::SeqId history, std::span<const int32_t> tokens) {
  const engine::kv::SeqId f = kv.fork(history);
  if (!kv.append(f, tokens)) {
    kv.free(f);
    throw std::runtime_error("fidelity: no room in the KV pool for a question");
  }
  engine::Model::BatchItem item;
  item.tokens = tokens;
  item.paged = &kv;
  item.seq = f;
  std::vector<float> logits = model.forward_batch(std::span(&item, 1));
  kv.free(f);
  return logits;
}

}  // namespace

bool answer(const engine::Model& model, engine::kv::KvCacheManager& kv, engine::kv::SeqId history, const Fact& f,
            double* margin) {
  const std::vector<int32_t> q = question_tokens(f);
  const std::vector<float> logits = run_on_fork(model, kv, history, q);
  float other = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i)
    if (int32_t(i) != f.value) other = std::max(other, logits[i]);
  const double m = double(logits[size_t(f.value)] - other);
  if (margin) *margin = m;
  return m > 0;
}

RecallResult ask_questions(const engine::Model& model, engine::kv::KvCacheManager& kv, engine::kv::SeqId history,
                           const Conversation& c) {
  RecallResult r;
  r.min_margin = std::numeric_limits<double>::infinity();
  for (size_t qi : c.questions) {
    double m = 0;
    ++r.asked;
    if (!answer(model, kv, history, c.facts[qi], &m)) continue;
    ++r.correct;
    r.min_margin = std::min(r.min_margin, m);
  }
  if (r.correct == 0) r.min_margin = 0;
  return r;
}

double decode_seconds_per_token(const engine::Model& model, engine::kv::KvCacheManager& kv,
                                engine::kv::SeqId history, int steps) {
  const engine::kv::SeqId f = kv.fork(history);
  std::vector<double> times;
  int32_t token = 12;  // a reserved (topic-free) id, valid in any vocabulary of the benches
  for (int i = 0; i < steps; ++i) {
    if (!kv.append(f, std::span(&token, 1))) break;
    engine::Model::BatchItem item;
    item.tokens = std::span(&token, 1);
    item.paged = &kv;
    item.seq = f;
    const auto t0 = std::chrono::steady_clock::now();
    (void)model.forward_batch(std::span(&item, 1));
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    kv.commit(f);
  }
  kv.free(f);
  if (times.empty()) throw std::runtime_error("fidelity: no room in the KV pool to time decode");
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace mnemo::bench::fidelity
