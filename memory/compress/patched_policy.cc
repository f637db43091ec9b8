#include "memory/compress/policies.h"

#include <stdexcept>

namespace mnemo::memory::compress {

PatchedPolicy::PatchedPolicy(std::vector<int32_t> instruction, std::vector<int32_t> text, engine::ScoreReduce reduce)
    : reduce_(reduce) {
  set_queries(std::move(instruction), std::move(text));
}

void PatchedPolicy::set_queries(std::vector<int32_t> instruction, std::vector<int32_t> text) {
  queries_ = std::move(instruction);
  queries_.insert(queries_.end(), text.begin(), text.end());
}

// EpiCache: the queries are placed after the cache (true positions
// following it), their attention max-reduced per slot; their K,V are never kept.
std::vector<LayerScores> PatchedPolicy::score(const CacheView& view) {
  if (queries_.empty()) throw std::logic_error("patched policy: no queries set (set_queries before prefill)");
  const engine::SlotScores s = engine::score_slots(view.model, view.cache, view.seq, queries_, reduce_);
  std::vector<LayerScores> out(s.size());
  for (size_t l = 0; l < s.size(); ++l) out[l].scores = s[l];
  return out;
}

}  // namespace mnemo::memory::compress
