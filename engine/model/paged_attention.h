#pragma once
// Attention of one sequence's new tokens over its slots in the paged cache.
#include <cstdint>

#include "engine/kv/kv_cache_manager.h"

namespace mnemo::engine {

// q and out are [m, heads, head_dim] for the last m slots of `layer`, whose
// K,V are already written. The kernels read the blocks in place, for decode
// and prefill chunks alike (no copy into a contiguous buffer).
void paged_layer_attention(const kv::KvCacheManager& cache, kv::SeqId seq, int64_t layer, const float* q, int64_t m,
                           int64_t heads, float scale, float* out, int64_t window);

}  // namespace mnemo::engine
