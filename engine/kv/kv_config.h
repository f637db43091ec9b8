#pragma once
// Shapes and sizes of the paged KV cache. One pool per layer, all pools the
// same number of blocks, so a block id names the same slot in every layer.
#include <cstdint>
#include <functional>
#include <span>

#include "kernels/kv_dtype.h"

namespace mnemo::engine::kv {

// hash(parent block hash, token ids of this block, tenant salt).
using BlockHashFn = std::function<uint64_t(uint64_t, std::span<const int32_t>, uint64_t)>;

// The default chain hash: 64-bit mixing of every token, seeded by parent and salt.
uint64_t default_block_hash(uint64_t parent, std::span<const int32_t> tokens, uint64_t salt);

using kernels::KvDType;

struct KvConfig {
  int64_t layers = 1;
  int64_t kv_heads = 1;
  int64_t head_dim = 1;
  int64_t block_size = 16;   // tokens per block
  int64_t bytes_budget = 0;  // for all layers together, K and V
  // What a block stores: bf16 halves the bytes per token (and what decode
  // attention reads); f32 keeps the forward pass's values exactly.
  KvDType dtype = KvDType::BF16;
  BlockHashFn hash = default_block_hash;  // tests inject a colliding one

  // Elements of K (or of V) in one block of one layer: [kv_heads][block_size][head_dim].
  int64_t elems_per_half() const { return kv_heads * block_size * head_dim; }
  int64_t elem_bytes() const { return int64_t(kernels::kv_dtype_size(dtype)); }
  // K and V of one block in one layer.
  int64_t bytes_per_block() const { return 2 * elems_per_half() * elem_bytes(); }
  int64_t blocks_per_layer() const { return bytes_budget / (layers * bytes_per_block()); }
};

}  // namespace mnemo::engine::kv
