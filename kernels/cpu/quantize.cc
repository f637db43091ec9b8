#include "kernels/cpu/quantize.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/transpose16.h"

#if MNEMO_AVX512
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace mnemo::kernels::cpu {
namespace {

#if MNEMO_AVX512
// 32 source values as f32 (lo = 0..15, hi = 16..31).
inline void load32(const MatrixView& w, const void* p, __m512& lo, __m512& hi) {
  switch (w.dtype) {
    case DType::F32:
      lo = _mm512_loadu_ps(p);
      hi = _mm512_loadu_ps(static_cast<const float*>(p) + 16);
      return;
    case DType::F16:
      lo = _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
      hi = _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p) + 1));
      return;
    case DType::BF16:
    case DType::Q8_0: {
      const auto bf = [](__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); };
      lo = bf(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
      hi = bf(_mm256_loadu_si256(static_cast<const __m256i*>(p) + 1));
      return;
    }
  }
}

// roundf (ties away from zero), exactly: t = trunc(v); v - t is exact.
inline __m512i round_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
  const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one));
}

// The same arithmetic as quantize_row_q8_0, 32 values per step.
void quantize_row_avx512(const MatrixView& w, int64_t r, BlockQ8_0* out) {
  const size_t es = dtype_size(w.dtype);
  const auto* src = static_cast<const uint8_t*>(w.data) + size_t(r * w.cols) * es;
  for (int64_t b = 0; b < w.cols / kQ8Block; ++b) {
    __m512 lo, hi;
    load32(w, src + size_t(b * kQ8Block) * es, lo, hi);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    const __m512 vid = _mm512_set1_ps(id);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].qs), _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(lo, vid))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].qs + 16),
                     _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(hi, vid))));
  }
}
#endif

}  // namespace

float quantize_block_q8(const float* x, int8_t* q) {
#if MNEMO_AVX512
  if (avx512::supported()) {
    const __m512 lo = _mm512_loadu_ps(x), hi = _mm512_loadu_ps(x + 16);
    const float d = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi))) / 127.0f;
    const __m512 vid = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(lo, vid))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(hi, vid))));
    return d;
  }
#endif
  float amax = 0;
  for (int64_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int64_t i = 0; i < kQ8Block; ++i) q[i] = int8_t(std::round(x[i] * id));
  return d;
}

void quantize_row_q8_0(const float* x, int64_t cols, BlockQ8_0* out) {
  assert(cols % kQ8Block == 0);
  for (int64_t b = 0; b < cols / kQ8Block; ++b) {
    const float* v = x + b * kQ8Block;
    float amax = 0;
    for (int64_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(v[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    for (int64_t i = 0; i < kQ8Block; ++i) out[b].qs[i] = int8_t(std::round(v[i] * id));
  }
}

void dequantize_row_q8_0(const BlockQ8_0* in, int64_t cols, float* out) {
  for (int64_t b = 0; b < cols / kQ8Block; ++b) {
    const float d = f16_to_f32(in[b].d);
    for (int64_t i = 0; i < kQ8Block; ++i) out[b * kQ8Block + i] = d * float(in[b].qs[i]);
  }
}

namespace {

// One group of nrows <= kQ8Rows rows (nb blocks each, row-major) into the
// interleaved layout at g, padding rows and a trailing odd block with zeros.
void pack_group(const BlockQ8_0* rows, int64_t nrows, int64_t nb, uint8_t* g) {
  const int64_t pairs = (nb + 1) / 2;
  for (int64_t p = 0; p < pairs; ++p) {
    uint8_t* u = g + size_t(p) * kQ8PairBytes;
    std::memset(u, 0, 4 * kQ8Rows);
    std::memset(u + 4 * kQ8Rows, 0x80, kQ8PairBytes - 4 * kQ8Rows);
  }
  for (int64_t j = 0; j < nrows; ++j)
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ8_0& blk = rows[j * nb + b];
      uint8_t* u = g + size_t(b / 2) * kQ8PairBytes;
      std::memcpy(u + (b % 2) * 2 * kQ8Rows + 2 * j, &blk.d, 2);
      uint8_t* v = u + 4 * kQ8Rows + (b % 2) * kQ8Rows * kQ8Block + 4 * j;
      for (int64_t k = 0; k < kQ8Block / 4; ++k) {
        uint32_t q;
        std::memcpy(&q, blk.qs + 4 * k, 4);
        q ^= 0x80808080u;
        std::memcpy(v + 64 * k, &q, 4);
      }
    }
}

}  // namespace

MatrixView quantize_q8_0(const MatrixView& w, void* dst) {
  assert(q8_0_fits(w) && w.dtype != DType::Q8_0);
  auto* base = static_cast<uint8_t*>(dst);
  const int64_t nb = w.cols / kQ8Block, groups = (w.rows + kQ8Rows - 1) / kQ8Rows;
  parallel_for(groups, [&](int64_t g0, int64_t g1) {
    std::vector<BlockQ8_0> blocks(size_t(kQ8Rows * nb));
    std::vector<float> row(size_t(w.cols));
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t nrows = std::min(kQ8Rows, w.rows - g * kQ8Rows);
      for (int64_t j = 0; j < nrows; ++j) {
        const int64_t r = g * kQ8Rows + j;
#if MNEMO_AVX512
        if (avx512::supported()) {
          quantize_row_avx512(w, r, blocks.data() + j * nb);
          continue;
        }
#endif
        row_to_f32(w, r, row.data());
        quantize_row_q8_0(row.data(), w.cols, blocks.data() + j * nb);
      }
      pack_group(blocks.data(), nrows, nb, base + size_t(g) * q8_group_bytes(w.cols));
    }
  }, w.rows * w.cols >= (1 << 16));
  return MatrixView{dst, DType::Q8_0, w.rows, w.cols};
}

MatrixView pack_q8_0(const BlockQ8_0* blocks, int64_t rows, int64_t cols, void* dst) {
  assert(cols % kQ8Block == 0);
  const int64_t nb = cols / kQ8Block;
  for (int64_t g = 0; g * kQ8Rows < rows; ++g)
    pack_group(blocks + g * kQ8Rows * nb, std::min(kQ8Rows, rows - g * kQ8Rows), nb,
               static_cast<uint8_t*>(dst) + size_t(g) * q8_group_bytes(cols));
  return MatrixView{dst, DType::Q8_0, rows, cols};
}

void unpack_q8_0_row(const MatrixView& w, int64_t r, BlockQ8_0* out) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t b = 0; b < w.cols / kQ8Block; ++b) {
    std::memcpy(&out[b].d, base + q8_scale_offset(w.cols, r, b), 2);
    const uint8_t* v = base + q8_value_offset(w.cols, r, b * kQ8Block);
    for (int64_t k = 0; k < kQ8Block / 4; ++k) {
      uint32_t q;
      std::memcpy(&q, v + 64 * k, 4);
      q ^= 0x80808080u;
      std::memcpy(out[b].qs + 4 * k, &q, 4);
    }
  }
}

void dequantize_q8_0_row(const MatrixView& w, int64_t r, float* out) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t b = 0; b < w.cols / kQ8Block; ++b) {
    uint16_t dh;
    std::memcpy(&dh, base + q8_scale_offset(w.cols, r, b), 2);
    const float d = f16_to_f32(dh);
    const uint8_t* v = base + q8_value_offset(w.cols, r, b * kQ8Block);
    for (int64_t c = 0; c < kQ8Block; ++c) out[b * kQ8Block + c] = d * float(int8_t(v[(c / 4) * 64 + c % 4] ^ 0x80));
  }
}

#if MNEMO_AVX512
namespace {

// One group's first nrows rows to f32 (f) or bf16 (h) rows of stride ld. A
// unit's 16 lines are a 16 x 16 matrix of dwords (line, row); transposed,
// row j's dwords are its 64 bytes of the unit's two blocks, in order.
void dequantize_group_avx512(const uint8_t* g, int64_t nb, int64_t nrows, float* f, uint16_t* h, int64_t ld) {
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  for (int64_t b = 0; b < nb; b += 2) {
    const uint8_t* u = g + size_t(b / 2) * kQ8PairBytes;
    alignas(64) float d[2][kQ8Rows];
    _mm512_store_ps(d[0], _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(u))));
    _mm512_store_ps(d[1], _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(u + 2 * kQ8Rows))));
    __m512 r[16];  // dwords as f32 lanes: the transpose only moves bits
    for (int k = 0; k < 16; ++k) r[k] = _mm512_loadu_ps(u + 4 * kQ8Rows + 64 * k);
    transpose16(r);
    for (int64_t j = 0; j < nrows; ++j) {
      const __m512i q = _mm512_xor_si512(_mm512_castps_si512(r[j]), flip);
      const auto put = [&](int64_t blk, __m128i q0, __m128i q1, float scale) {
        const __m512 s = _mm512_set1_ps(scale);
        const __m512 lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), s);
        const __m512 hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), s);
        if (h) {
          _mm512_storeu_si512(h + j * ld + blk * kQ8Block, _mm512_castps_si512(__m512(_mm512_cvtne2ps_pbh(hi, lo))));
        } else {
          _mm512_storeu_ps(f + j * ld + blk * kQ8Block, lo);
          _mm512_storeu_ps(f + j * ld + blk * kQ8Block + 16, hi);
        }
      };
      put(b, _mm512_extracti32x4_epi32(q, 0), _mm512_extracti32x4_epi32(q, 1), d[0][j]);
      if (b + 1 < nb) put(b + 1, _mm512_extracti32x4_epi32(q, 2), _mm512_extracti32x4_epi32(q, 3), d[1][j]);
    }
  }
}

}  // namespace
#endif

void dequantize_q8_0_rows(const MatrixView& w, int64_t r0, int64_t r1, void* out, int64_t ld, bool bf16) {
  assert(r0 % kQ8Rows == 0);
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t nb = w.cols / kQ8Block;
  auto* f = static_cast<float*>(out);
  auto* h = static_cast<uint16_t*>(out);
  for (int64_t g = r0 / kQ8Rows; g * kQ8Rows < r1; ++g) {
    const int64_t nrows = std::min(kQ8Rows, r1 - g * kQ8Rows), first = g * kQ8Rows - r0;
#if MNEMO_AVX512
    if (avx512::supported()) {
      const uint8_t* gp = base + size_t(g) * q8_group_bytes(w.cols);
      dequantize_group_avx512(gp, nb, nrows, bf16 ? nullptr : f + first * ld, bf16 ? h + first * ld : nullptr, ld);
      continue;
    }
#endif
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* u = base + q8_unit_offset(w.cols, g * kQ8Rows, b);
      const uint8_t* v = u + 4 * kQ8Rows + (b % 2) * kQ8Rows * kQ8Block;
      for (int64_t j = 0; j < nrows; ++j) {
        uint16_t dh;
        std::memcpy(&dh, u + (b % 2) * 2 * kQ8Rows + 2 * j, 2);
        const float d = f16_to_f32(dh);
        const size_t o = size_t((first + j) * ld + b * kQ8Block);
        for (int64_t c = 0; c < kQ8Block; ++c) {
          const float x = d * float(int8_t(v[(c / 4) * 64 + 4 * j + c % 4] ^ 0x80));
          if (bf16) h[o + size_t(c)] = f32_to_bf16(x);
          else f[o + size_t(c)] = x;
        }
      }
    }
  }
}

}  // namespace mnemo::kernels::cpu
