#include "memory/compress/policies.h"

namespace mnemo::memory::compress {

// Never asked by the driver (evicts() is false); everything ranks equal.
std::vector<LayerScores> FullPolicy::score(const CacheView& view) {
  const auto& cfg = view.cache.config();
  std::vector<LayerScores> out(size_t(cfg.layers));
  for (int64_t l = 0; l < cfg.layers; ++l)
    out[size_t(l)].scores.assign(size_t(cfg.kv_heads), std::vector<float>(size_t(view.cache.length(view.seq, l)), 0.0f));
  return out;
}

}  // namespace mnemo::memory::compress
