#pragma once
// In-place transpose of a 16x16 block of 32-bit lanes in AVX-512 registers,
// shared by the GEMM's weight packing and attention's key blocks.
#include "kernels/cpu/kv_rows.h"

#if MNEMO_KV_AVX512
namespace mnemo::kernels::cpu {

// r[i] lane j <-> r[j] lane i. Zero-masked forms, as in kv_rows.h (GCC 12
// flags the unmasked ones' undefined vectors once inlined).
inline void transpose16(__m512 r[16]) {
  constexpr __mmask16 kAll = 0xffff;
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_maskz_unpacklo_ps(kAll, r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_maskz_unpackhi_ps(kAll, r[2 * i], r[2 * i + 1]);
  }
  __m512 u[16];  // u[4g + c], 128-bit lane L: rows 4g..4g+3 of column 4L + c
  for (int g = 0; g < 4; ++g) {
    u[4 * g + 0] = _mm512_maskz_shuffle_ps(kAll, t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm512_maskz_shuffle_ps(kAll, t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm512_maskz_shuffle_ps(kAll, t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm512_maskz_shuffle_ps(kAll, t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 s0 = _mm512_maskz_shuffle_f32x4(kAll, u[c], u[4 + c], 0x88);
    const __m512 s1 = _mm512_maskz_shuffle_f32x4(kAll, u[c], u[4 + c], 0xDD);
    const __m512 s2 = _mm512_maskz_shuffle_f32x4(kAll, u[8 + c], u[12 + c], 0x88);
    const __m512 s3 = _mm512_maskz_shuffle_f32x4(kAll, u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_maskz_shuffle_f32x4(kAll, s0, s2, 0x88);
    r[8 + c] = _mm512_maskz_shuffle_f32x4(kAll, s0, s2, 0xDD);
    r[4 + c] = _mm512_maskz_shuffle_f32x4(kAll, s1, s3, 0x88);
    r[12 + c] = _mm512_maskz_shuffle_f32x4(kAll, s1, s3, 0xDD);
  }
}

}  // namespace mnemo::kernels::cpu
#endif
