#include "memory/compress/policies.h"

#include <algorithm>

namespace mnemo::memory::compress {

int64_t SnapKvPolicy::block_queries(int64_t block_tokens) const { return std::min(window_, block_tokens); }

void SnapKvPolicy::observe(const CacheView& view, std::span<const int32_t> queries) {
  observed_ = engine::score_slots(view.model, view.cache, view.seq, queries, engine::ScoreReduce::Max);
}

// Slots the window saw keep its scores; the window's own slots (appended
// after observe) are protected. Without an observation (the window was the
// whole history) everything ranks equal and recency breaks the tie.
std::vector<LayerScores> SnapKvPolicy::score(const CacheView& view) {
  const auto& cfg = view.cache.config();
  std::vector<LayerScores> out(size_t(cfg.layers));
  for (int64_t l = 0; l < cfg.layers; ++l) {
    const int64_t len = view.cache.length(view.seq, l);
    LayerScores& ls = out[size_t(l)];
    ls.scores.resize(size_t(cfg.kv_heads));
    ls.protect.resize(size_t(cfg.kv_heads));
    for (int64_t h = 0; h < cfg.kv_heads; ++h) {
      auto& s = ls.scores[size_t(h)];
      s.assign(size_t(len), 0.0f);
      int64_t seen = 0;
      if (!observed_.empty()) {
        const auto& o = observed_[size_t(l)][size_t(h)];
        seen = std::min<int64_t>(len, int64_t(o.size()));
        std::copy_n(o.begin(), seen, s.begin());
      }
      for (int64_t i = seen; i < len; ++i) ls.protect[size_t(h)].push_back(int32_t(i));
    }
  }
  observed_.clear();
  return out;
}

}  // namespace mnemo::memory::compress
