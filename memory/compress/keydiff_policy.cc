#include "memory/compress/policies.h"

#include <cmath>

namespace mnemo::memory::compress {

// Per layer and KV head: the mean of the unit keys, then each key's negated
// cosine to it; a distinctive key scores high. gather() leaves the head's
// hole out, so its i-th key sits at slot i, or past the hole.
std::vector<LayerScores> KeyDiffPolicy::score(const CacheView& view) {
  const auto& cfg = view.cache.config();
  const int64_t hd = cfg.head_dim;
  std::vector<LayerScores> out(size_t(cfg.layers));
  for (int64_t l = 0; l < cfg.layers; ++l) {
    LayerScores& ls = out[size_t(l)];
    ls.scores.resize(size_t(cfg.kv_heads));
    for (int64_t h = 0; h < cfg.kv_heads; ++h) {
      const engine::kv::HeadCopy c = view.cache.gather(view.seq, l, h);
      const engine::kv::Hole hole = view.cache.hole(view.seq, l, h);
      const int64_t n = int64_t(c.k.size()) / hd, gap = hole.empty() ? 0 : hole.end - hole.begin;
      std::vector<double> norm(static_cast<size_t>(n)), mean(static_cast<size_t>(hd), 0.0);
      for (int64_t i = 0; i < n; ++i) {
        const float* k = &c.k[size_t(i * hd)];
        double sq = 0;
        for (int64_t d = 0; d < hd; ++d) sq += double(k[d]) * k[d];
        norm[size_t(i)] = std::sqrt(sq);
        if (norm[size_t(i)] == 0) continue;
        for (int64_t d = 0; d < hd; ++d) mean[size_t(d)] += k[d] / norm[size_t(i)];
      }
      double mnorm = 0;
      for (double m : mean) mnorm += m * m;
      mnorm = std::sqrt(mnorm);
      auto& s = ls.scores[size_t(h)];
      s.assign(size_t(view.cache.length(view.seq, l)), 0.0f);
      for (int64_t i = 0; i < n; ++i) {
        if (norm[size_t(i)] == 0 || mnorm == 0) continue;
        const float* k = &c.k[size_t(i * hd)];
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += k[d] * mean[size_t(d)];
        const int64_t slot = (gap > 0 && i >= hole.begin) ? i + gap : i;
        s[size_t(slot)] = float(-dot / (norm[size_t(i)] * mnorm));
      }
    }
  }
  return out;
}

}  // namespace mnemo::memory::compress
