#pragma once
// Rows of the KV cache in its element type (kernels/kv_dtype.h): conversion
// from and to f32, and the vector helpers decode attention
// (attention_rows.h) reads bf16 rows with in place, widening them in
// registers (a bf16 is the high half of an f32, so widening is a shift).
// Inline: they run once per key and must not cost a call each.
#include <cstdint>
#include <cstring>

#include "kernels/dtype.h"
#include "kernels/kv_dtype.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512BF16__)
#define MNEMO_KV_AVX512 1
#include <immintrin.h>
#else
#define MNEMO_KV_AVX512 0
#endif

namespace mnemo::kernels::cpu {

#if MNEMO_KV_AVX512
// The zero-masked forms throughout: GCC 12's unmasked ones pass an undefined
// vector that -Wmaybe-uninitialized flags once inlined.
namespace kv_simd {
constexpr __mmask16 kAll = 0xffff;
inline __mmask16 tail_mask(int64_t left) { return __mmask16((1u << left) - 1); }
inline __m512 widen(__m256i h) {
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAll, _mm512_maskz_cvtepu16_epi32(kAll, h), 16));
}
// _mm512_reduce_add_ps has no masked form; its undefined vector is harmless.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
inline float hsum(__m512 a) { return _mm512_reduce_add_ps(a); }
#pragma GCC diagnostic pop
inline __m512 load_bf16(const uint16_t* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline __m512 load_bf16(const uint16_t* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
// Round to nearest even (vcvtneps2bf16; it also flushes f32 subnormals,
// below 1.2e-38, to zero: far below anything a key or value carries).
inline __m256i narrow(__m512 x) { return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x)); }
}  // namespace kv_simd
#endif

inline void bf16_row_to_f32(const uint16_t* src, int64_t n, float* dst) {
#if MNEMO_KV_AVX512
  using namespace kv_simd;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load_bf16(src + i));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(dst + i, m, load_bf16(src + i, m));
  }
#else
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
#endif
}

inline void f32_row_to_bf16(const float* src, int64_t n, uint16_t* dst) {
#if MNEMO_KV_AVX512
  using namespace kv_simd;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), narrow(_mm512_loadu_ps(src + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm256_mask_storeu_epi16(dst + i, m, narrow(_mm512_maskz_loadu_ps(m, src + i)));
  }
#else
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
#endif
}

// n elements of type t at src, as f32.
inline void kv_row_to_f32(KvDType t, const void* src, int64_t n, float* dst) {
  if (t == KvDType::BF16) {
    bf16_row_to_f32(static_cast<const uint16_t*>(src), n, dst);
    return;
  }
  std::memcpy(dst, src, size_t(n) * sizeof(float));
}

// n f32 stored as type t at dst.
inline void kv_row_from_f32(KvDType t, const float* src, int64_t n, void* dst) {
  if (t == KvDType::BF16) {
    f32_row_to_bf16(src, n, static_cast<uint16_t*>(dst));
    return;
  }
  std::memcpy(dst, src, size_t(n) * sizeof(float));
}

}  // namespace mnemo::kernels::cpu
