#pragma once
// Attention of one sequence's new tokens over its slots in the paged cache.
#include <cstdint>

#include "engine/kv/kv_cache_manager.h"

namespace mnemo::engine {

// q and out are [m, heads, head_dim] for the last m slots of `layer`, whose
// K,V are already written. Chunks of many tokens gather the blocks into a
// contiguous buffer first, so attention runs as GEMMs.
void paged_layer_attention(const kv::KvCacheManager& cache, kv::SeqId seq, int64_t layer, const float* q, int64_t m,
                           int64_t heads, float scale, float* out, int64_t window);

}  // namespace mnemo::engine
