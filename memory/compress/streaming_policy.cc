#include "memory/compress/policies.h"

#include <algorithm>

namespace mnemo::memory::compress {

// Score = original position, so the top of the budget is the most recent
// tokens; sinks are protected. Sinks are capped at half the layer's budget
// so a small budget still keeps a recent window. Hole slots (position -1)
// are masked by the driver.
std::vector<LayerScores> StreamingPolicy::score(const CacheView& view) {
  const auto& cfg = view.cache.config();
  std::vector<LayerScores> out(size_t(cfg.layers));
  for (int64_t l = 0; l < cfg.layers; ++l) {
    const int64_t sinks = std::min(sinks_, view.budgets[size_t(l)] / 2);
    LayerScores& ls = out[size_t(l)];
    ls.scores.resize(size_t(cfg.kv_heads));
    ls.protect.resize(size_t(cfg.kv_heads));
    for (int64_t h = 0; h < cfg.kv_heads; ++h) {
      const std::vector<int32_t> pos = slot_positions(view.cache, view.seq, l, h);
      auto& s = ls.scores[size_t(h)];
      s.resize(pos.size());
      for (size_t i = 0; i < pos.size(); ++i) {
        s[i] = float(pos[i]);
        if (pos[i] >= 0 && pos[i] < sinks) ls.protect[size_t(h)].push_back(int32_t(i));
      }
    }
  }
  return out;
}

}  // namespace mnemo::memory::compress
