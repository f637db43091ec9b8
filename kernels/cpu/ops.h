#pragma once
// Element-wise and attention ops of a Llama-family forward pass, in f32.
// Activations are row-major [tokens, features].
#include <cstdint>
#include <span>

#include "kernels/kv_dtype.h"

namespace mnemo::kernels::cpu {

// out[t] = x[t] / rms(x[t]) * w, rows of length dim.
void rmsnorm(const float* x, const float* w, float eps, int64_t n, int64_t dim, float* out);

// Rotary embedding in the Hugging Face "rotate_half" layout: element i pairs
// with i + head_dim/2. inv_freq has head_dim/2 entries (already scaled).
// x is [n, heads, head_dim]; positions[n].
void rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const int32_t* positions,
          std::span<const float> inv_freq);

// out = silu(gate) * up, element-wise over count elements.
void silu_mul(const float* gate, const float* up, int64_t count, float* out);

// x += y over count elements.
void add_inplace(float* x, const float* y, int64_t count);

// x[t] += bias for each of n rows of length dim.
void add_bias(float* x, const float* bias, int64_t n, int64_t dim);

// In-place softmax over count values; returns nothing, handles -inf rows.
void softmax(float* x, int64_t count);

// A contiguous per-layer KV store: [kv_heads][capacity][head_dim].
struct KvView {
  float* k = nullptr;
  float* v = nullptr;
  int64_t capacity = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  // Per KV head h, positions [hole_begin[h], hole_end[h]) hold nothing (a
  // compacted head that kept fewer slots than the others): attention gives
  // them no weight and never reads them. Empty spans: no head has a hole.
  std::span<const int64_t> hole_begin{}, hole_end{};
};

// Writes n new keys/values ([n, kv_heads, head_dim]) at positions start..start+n-1.
void kv_write(const KvView& kv, int64_t start, int64_t n, const float* k, const float* v);

// Causal grouped-query attention. q is [n, heads, head_dim] for the tokens at
// positions start..start+n-1, whose keys are already in kv; out is
// [n, heads, head_dim]. Query head h reads KV head h / (heads / kv_heads).
// window > 0 limits each query at position p to keys p-window+1 .. p
// (positions, i.e. slots: a hole inside the window still counts as slots).
// Keys in a head's hole are left out of its softmax.
void attention(const float* q, int64_t n, int64_t heads, int64_t start, const KvView& kv, float scale,
               float* out, int64_t window = 0);

// A sequence's KV spread over fixed-size blocks (the paged cache): token j
// of KV head h sits in block j / block_size at slot j % block_size; each
// block holds [kv_heads][block_size][head_dim] keys (and values likewise),
// elements of type dtype (bf16 is widened to f32 as it is read).
struct PagedKvView {
  std::span<const void* const> k_blocks;
  std::span<const void* const> v_blocks;
  int64_t block_size = 16;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  std::span<const int64_t> hole_begin{}, hole_end{};  // as in KvView
  KvDType dtype = KvDType::F32;
};

// attention() over a paged cache: the same contract, the keys of positions
// 0 .. start+n-1 already written.
void paged_attention(const float* q, int64_t n, int64_t heads, int64_t start, const PagedKvView& kv, float scale,
                     float* out, int64_t window = 0);

}  // namespace mnemo::kernels::cpu
