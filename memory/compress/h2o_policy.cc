#include "memory/compress/policies.h"

#include <cmath>

namespace mnemo::memory::compress {

// Slots move on compaction, so mass is keyed by original position; a
// position no longer cached is forgotten at the next observation.
void H2oPolicy::observe(const CacheView& view, std::span<const int32_t> queries) {
  const engine::SlotScores s = engine::score_slots(view.model, view.cache, view.seq, queries, engine::ScoreReduce::Sum);
  const auto& cfg = view.cache.config();
  mass_.resize(size_t(cfg.layers));
  for (int64_t l = 0; l < cfg.layers; ++l) {
    mass_[size_t(l)].resize(size_t(cfg.kv_heads));
    for (int64_t h = 0; h < cfg.kv_heads; ++h) {
      const std::vector<int32_t> pos = slot_positions(view.cache, view.seq, l, h);
      const auto& row = s[size_t(l)][size_t(h)];
      auto& old = mass_[size_t(l)][size_t(h)];
      std::unordered_map<int32_t, double> now;
      now.reserve(pos.size());
      for (size_t i = 0; i < pos.size() && i < row.size(); ++i) {
        if (pos[i] < 0 || std::isinf(row[i])) continue;  // a hole
        const auto it = old.find(pos[i]);
        now[pos[i]] = (it == old.end() ? 0.0 : it->second) + double(row[i]);
      }
      old = std::move(now);
    }
  }
}

double H2oPolicy::mass(int64_t layer, int64_t head, int32_t position) const {
  if (size_t(layer) >= mass_.size() || size_t(head) >= mass_[size_t(layer)].size()) return 0;
  const auto& m = mass_[size_t(layer)][size_t(head)];
  const auto it = m.find(position);
  return it == m.end() ? 0.0 : it->second;
}

// Score = accumulated mass; the last `recent` positions (half the budget by
// default) are protected, as H2O splits its budget between heavy hitters and
// a recent window.
std::vector<LayerScores> H2oPolicy::score(const CacheView& view) {
  const auto& cfg = view.cache.config();
  const int64_t ntok = int64_t(view.cache.tokens(view.seq).size());
  std::vector<LayerScores> out(size_t(cfg.layers));
  for (int64_t l = 0; l < cfg.layers; ++l) {
    const int64_t recent = recent_ >= 0 ? recent_ : view.budgets[size_t(l)] / 2;
    LayerScores& ls = out[size_t(l)];
    ls.scores.resize(size_t(cfg.kv_heads));
    ls.protect.resize(size_t(cfg.kv_heads));
    for (int64_t h = 0; h < cfg.kv_heads; ++h) {
      const std::vector<int32_t> pos = slot_positions(view.cache, view.seq, l, h);
      auto& s = ls.scores[size_t(h)];
      s.resize(pos.size());
      for (size_t i = 0; i < pos.size(); ++i) {
        s[i] = float(mass(l, h, pos[i]));
        if (pos[i] >= ntok - recent) ls.protect[size_t(h)].push_back(int32_t(i));
      }
    }
  }
  return out;
}

}  // namespace mnemo::memory::compress
