#include "engine/model/paged_attention.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/ops.h"

namespace mnemo::engine {

namespace cpu = kernels::cpu;

void paged_layer_attention(const kv::KvCacheManager& cache, kv::SeqId seq, int64_t layer, const float* q, int64_t m,
                           int64_t heads, float scale, float* out, int64_t window) {
  const kv::LayerBlocks lb = cache.layer_blocks(seq, layer);
  const int64_t bs = cache.config().block_size, kvh = cache.config().kv_heads, d = cache.config().head_dim;
  const int64_t len = lb.length, start = len - m;
  // A compacted layer's slots are no longer consecutive positions: a window
  // over slots would be meaningless there.
  if (cache.compacted(seq)) window = 0;
  // Heads that kept fewer slots than others at a compaction have a hole the
  // kernels must skip; most layers have none, and then the spans stay empty.
  thread_local std::vector<int64_t> hole_begin, hole_end;
  hole_begin.resize(size_t(kvh));
  hole_end.resize(size_t(kvh));
  bool holes = false;
  for (int64_t h = 0; h < kvh; ++h) {
    const kv::Hole gap = cache.hole(seq, layer, h);
    hole_begin[size_t(h)] = gap.begin;
    hole_end[size_t(h)] = gap.end;
    holes = holes || !gap.empty();
  }
  const std::span<const int64_t> hb = holes ? std::span<const int64_t>(hole_begin) : std::span<const int64_t>();
  const std::span<const int64_t> he = holes ? std::span<const int64_t>(hole_end) : std::span<const int64_t>();
  const kernels::KvDType dtype = cache.dtype();
  thread_local std::vector<const void*> kp, vp;
  kp.clear();
  vp.clear();
  for (int32_t b : lb.blocks) {
    kp.push_back(cache.k_block(layer, b));
    vp.push_back(cache.v_block(layer, b));
  }
  const cpu::PagedKvView kv{kp, vp, bs, kvh, d, hb, he, dtype};
  cpu::paged_attention(q, m, heads, start, kv, scale, out, window);
}

}  // namespace mnemo::engine
