#pragma once
// Small shapes and deterministic K/V contents for the KV cache tests.
#include <cstdint>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "kernels/dtype.h"

namespace mnemo::engine::kv::testing {

// F32 unless asked: most tests check the exact values written.
inline KvConfig small_config(int64_t blocks, int64_t layers = 2, int64_t kv_heads = 2, int64_t head_dim = 4,
                             int64_t block_size = 4, KvDType dtype = KvDType::F32) {
  KvConfig c;
  c.dtype = dtype;
  c.layers = layers;
  c.kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.block_size = block_size;
  c.bytes_budget = blocks * layers * c.bytes_per_block();
  return c;
}

// The K (or V) element a token would have: a function of what determines
// it in a real model here (salt, token, position), so a prefix hit must
// reproduce exactly what a cold run writes.
inline float kv_value(uint64_t salt, int32_t token, int64_t pos, int64_t layer, int64_t head, int64_t d, bool is_v) {
  uint64_t x = salt * 1000003u + uint64_t(token) * 7919u + uint64_t(pos) * 104729u + uint64_t(layer) * 31u +
               uint64_t(head) * 17u + uint64_t(d) * 3u + (is_v ? 1u : 0u);
  x ^= x >> 13;
  x *= 0x5bd1e995u;
  x ^= x >> 15;
  return float(x % 100000) / 1000.0f;
}

// What a cache of this config reads back for a written value x: x itself in
// f32, x rounded to nearest even bf16 (the scalar reference) in bf16.
inline float stored(const KvConfig& c, float x) {
  return c.dtype == KvDType::BF16 ? kernels::bf16_to_f32(kernels::f32_to_bf16(x)) : x;
}

// K and V ([n][kv_heads][head_dim]) for tokens[first..first+n) at positions first.., one layer.
inline void make_kv(const KvConfig& c, uint64_t salt, const std::vector<int32_t>& tokens, int64_t first, int64_t n,
                    int64_t layer, std::vector<float>& k, std::vector<float>& v) {
  k.assign(size_t(n * c.kv_heads * c.head_dim), 0.f);
  v.assign(k.size(), 0.f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < c.kv_heads; ++h)
      for (int64_t d = 0; d < c.head_dim; ++d) {
        size_t at = size_t((i * c.kv_heads + h) * c.head_dim + d);
        k[at] = kv_value(salt, tokens[size_t(first + i)], first + i, layer, h, d, false);
        v[at] = kv_value(salt, tokens[size_t(first + i)], first + i, layer, h, d, true);
      }
}

// Appends tokens, writes their K/V in every layer and commits; false if no room.
inline bool append_and_write(KvCacheManager& kv, SeqId s, uint64_t salt, const std::vector<int32_t>& all_tokens,
                             int64_t first, int64_t n) {
  std::vector<int32_t> add(all_tokens.begin() + first, all_tokens.begin() + first + n);
  if (!kv.append(s, add)) return false;
  std::vector<float> k, v;
  for (int64_t l = 0; l < kv.config().layers; ++l) {
    make_kv(kv.config(), salt, all_tokens, first, n, l, k, v);
    kv.write(s, l, n, k.data(), v.data());
  }
  kv.commit(s);
  return true;
}

inline std::vector<int32_t> iota_tokens(int64_t n, int32_t start = 100) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = start + int32_t(i);
  return t;
}

}  // namespace mnemo::engine::kv::testing
