#pragma once
// Attention of the query rows that read one KV head: the G query heads of a
// GQA group for one decode token, or for a tile of consecutive prefill
// tokens. Each key and value row is read from memory and widened (bf16 ->
// f32) once for all rows instead of once per query head and token, straight
// from the cache's rows (contiguous or paged: no gather into a buffer).
// Scores come out 16 keys at a time: the block's keys are transposed to
// [dim][16 keys] once, then each row's 16 scores are one vector of
// multiply-adds with the query element broadcast (no horizontal sum per
// key). The value pass widens 16 value rows once and accumulates a
// register tile of (up to 4 rows) x (up to 64 dims) over them.
//
// Keys are walked as at most two ranges (a hole splits [first, end)); blocks
// of 16 never straddle a range, so no per-key test is needed. Prefill rows
// whose causal end falls inside the tile's keys are masked per row.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include "kernels/cpu/kv_rows.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/transpose16.h"

namespace mnemo::kernels::cpu::attn {

constexpr int64_t kKeyBlock = 16;
constexpr int64_t kPrefetchKeys = 32;
// From this many rows per KV head on, a key block is transposed once for
// all rows (score_block_many); fewer rows reduce per key (score_block_few).
constexpr int64_t kTransposeRows = 8;

// Per-thread buffers, grown on demand and reused across (token, head) pairs.
struct Scratch {
  std::vector<float> scores, tile, rows, q, o;
  void fit(int64_t group, int64_t dpad, int64_t keys) {
    auto grow = [](std::vector<float>& v, int64_t n) {
      if (int64_t(v.size()) < n) v.resize(size_t(n));
    };
    grow(scores, group * keys);
    grow(tile, std::max(dpad, group * kKeyBlock) * kKeyBlock);
    grow(rows, kKeyBlock * dpad);
    grow(q, group * dpad);
    grow(o, group * dpad);
  }
};

#if MNEMO_KV_AVX512
namespace simd {
using namespace kv_simd;

inline __m512 load_row(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load_row(const uint16_t* p, __mmask16 m) { return load_bf16(p, m); }

// r[i] holds lane-wise partial sums of one key; returns the 16 totals, the
// one of r[i] at position (i >> 2) | ((i & 3) << 2) (a 4x4 transpose of the
// index, undone by storing key k's partials in r[slot(k)]).
// Zero-masked forms, as in kv_rows.h (GCC 12 flags the unmasked ones).
inline __m512 reduce16(const __m512* r) {
  __m512 s[8], u[4], w[2];
  for (int i = 0; i < 8; ++i)
    s[i] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, r[2 * i], r[2 * i + 1], 0x44),
                         _mm512_maskz_shuffle_f32x4(kAll, r[2 * i], r[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)
    u[i] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, s[2 * i], s[2 * i + 1], 0x88),
                         _mm512_maskz_shuffle_f32x4(kAll, s[2 * i], s[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)
    w[i] = _mm512_add_ps(_mm512_maskz_unpacklo_ps(kAll, u[2 * i], u[2 * i + 1]), _mm512_maskz_unpackhi_ps(kAll, u[2 * i], u[2 * i + 1]));
  const __m512d a = _mm512_castps_pd(w[0]), b = _mm512_castps_pd(w[1]);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xff, a, b)), _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xff, a, b)));
}
constexpr int64_t slot(int64_t k) { return (k >> 2) | ((k & 3) << 2); }

// e^x for x <= 0 (scores minus their max), Cephes' expf polynomial
// (about 1 ulp): the scalar std::exp per score costs as much as reading a
// 4k context's keys. Clamped below so -inf and deep negatives give 0.
inline __m512 exp_nonpos(__m512 x) {
  x = _mm512_maskz_max_ps(kAll, x, _mm512_set1_ps(-104.0f));
  const __m512 n = _mm512_maskz_roundscale_ps(kAll, _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  x = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), x);
  __m512 p = _mm512_set1_ps(1.9875691500E-4f);
  p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(5.0000001201E-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, x), x, _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_scalef_ps(kAll, p, n);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
inline float hmax(__m512 a) { return _mm512_reduce_max_ps(a); }
#pragma GCC diagnostic pop

// softmax() (ops.h) with the exponentials 16 at a time.
inline void softmax_row(float* x, int64_t count) {
  __m512 mv = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) mv = _mm512_maskz_max_ps(kAll, mv, _mm512_loadu_ps(x + i));
  float mx = hmax(mv);
  for (; i < count; ++i) mx = std::max(mx, x[i]);
  if (!std::isfinite(mx)) {
    std::fill(x, x + count, 0.0f);
    return;
  }
  const __m512 m = _mm512_set1_ps(mx);
  __m512 sv = _mm512_setzero_ps();
  for (i = 0; i < count; i += 16) {
    const __mmask16 k = tail_mask(std::min<int64_t>(16, count - i));
    const __m512 e = exp_nonpos(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m));
    _mm512_mask_storeu_ps(x + i, k, e);
    sv = _mm512_mask_add_ps(sv, k, sv, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / hsum(sv));
  for (i = 0; i < count; i += 16) {
    const __mmask16 k = tail_mask(std::min<int64_t>(16, count - i));
    _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
  }
}

// Few rows (decode): scores of keys j0 .. j0+nb-1 (nb <= 16) for G rows, into
// scores[g * ld + col ...]. q: G rows of nc*16 floats (zero padded). NC is
// the chunk count when known at compile time (0: nc at run time). Per key,
// G vector accumulators of lane-wise partial sums, then one transpose-and-add
// reduces 16 keys' partials together: for one or two rows cheaper than
// transposing the keys, which pays off from kTransposeRows rows on.
template <int64_t NC, class T, class KeyAt>
void score_block_few(const float* q, int64_t G, int64_t nc_rt, __mmask16 last, float scale, KeyAt key_at, int64_t j0,
                 int64_t nb, float* tile, float* scores, int64_t ld, int64_t col) {
  constexpr int64_t kMaxChunks = 16;
  const int64_t nc = NC ? NC : nc_rt;
  for (int64_t i = 0; i < nb; ++i) {
    const T* k = key_at(j0 + i);
    __m512 kc[NC ? NC : kMaxChunks];
    for (int64_t c = 0; c < nc; ++c) kc[c] = load_row(k + c * 16, c == nc - 1 ? last : kAll);
    float* t = tile + slot(i) * 16;
    for (int64_t g = 0; g < G; ++g) {
      const float* qg = q + g * nc * 16;
      __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(qg), kc[0]);
      for (int64_t c = 1; c < nc; ++c) acc = _mm512_fmadd_ps(_mm512_loadu_ps(qg + c * 16), kc[c], acc);
      _mm512_storeu_ps(t + g * kKeyBlock * 16, acc);
    }
  }
  // Slots of keys past nb hold stale finite partials; their totals are not stored.
  const __m512 sv = _mm512_set1_ps(scale);
  const __mmask16 keep = tail_mask(nb);  // nb == 16: all 16 bits
  for (int64_t g = 0; g < G; ++g) {
    __m512 r[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(tile + (g * kKeyBlock + i) * 16);
    _mm512_mask_storeu_ps(scores + g * ld + col, keep, _mm512_mul_ps(reduce16(r), sv));
  }
}


// Scores of keys j0 .. j0+nb-1 (nb <= 16) for R rows, into
// scores[r * ld + col ...]. q: R rows of nc*16 floats (zero padded). The
// block's keys are widened and transposed once into kt ([dim][16 keys]), so
// a row's 16 scores are one vector: one multiply-add per dimension with the
// query element broadcast, RB rows at a time on independent accumulators.
// Each row's sum runs over the dimensions in order whatever R is.
template <int RB>
void score_rows(const float* q, int64_t r0, int64_t dpad, const float* kt, float scale, __mmask16 keep, float* scores,
                int64_t ld, int64_t col) {
  __m512 acc[RB];
  for (int r = 0; r < RB; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t e = 0; e < dpad; ++e) {
    const __m512 k = _mm512_loadu_ps(kt + e * 16);
    for (int r = 0; r < RB; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[(r0 + r) * dpad + e]), k, acc[r]);
  }
  const __m512 sv = _mm512_set1_ps(scale);
  for (int r = 0; r < RB; ++r) _mm512_mask_storeu_ps(scores + (r0 + r) * ld + col, keep, _mm512_mul_ps(acc[r], sv));
}

template <class T, class KeyAt>
void score_block_many(const float* q, int64_t R, int64_t nc, __mmask16 last, float scale, KeyAt key_at, int64_t j0,
                 int64_t nb, float* kt, float* scores, int64_t ld, int64_t col) {
  for (int64_t c = 0; c < nc; ++c) {
    __m512 r[16];
    for (int64_t i = 0; i < 16; ++i)
      r[i] = i < nb ? load_row(key_at(j0 + i) + c * 16, c == nc - 1 ? last : kAll) : _mm512_setzero_ps();
    transpose16(r);
    for (int i = 0; i < 16; ++i) _mm512_storeu_ps(kt + (c * 16 + i) * 16, r[i]);
  }
  const int64_t dpad = nc * 16;
  const __mmask16 keep = tail_mask(nb);  // nb == 16: all 16 bits
  int64_t r0 = 0;
  for (; r0 + 8 <= R; r0 += 8) score_rows<8>(q, r0, dpad, kt, scale, keep, scores, ld, col);
  for (; r0 + 4 <= R; r0 += 4) score_rows<4>(q, r0, dpad, kt, scale, keep, scores, ld, col);
  for (; r0 < R; ++r0) score_rows<1>(q, r0, dpad, kt, scale, keep, scores, ld, col);
}

// o[g] += sum_i p[g][i] * v_i for GB heads from g0 and CB 16-float chunks
// from c0, the o tile held in registers across the block's rows.
template <int GB, int CB>
void value_tile(const float* p, int64_t ld, int64_t col, int64_t g0, int64_t c0, const float* rows, int64_t dpad,
                int64_t nb, float* o) {
  __m512 acc[GB][CB];
  for (int g = 0; g < GB; ++g)
    for (int c = 0; c < CB; ++c) acc[g][c] = _mm512_loadu_ps(o + (g0 + g) * dpad + (c0 + c) * 16);
  for (int64_t i = 0; i < nb; ++i) {
    __m512 v[CB];
    for (int c = 0; c < CB; ++c) v[c] = _mm512_loadu_ps(rows + i * dpad + (c0 + c) * 16);
    for (int g = 0; g < GB; ++g) {
      const __m512 pv = _mm512_set1_ps(p[(g0 + g) * ld + col + i]);
      for (int c = 0; c < CB; ++c) acc[g][c] = _mm512_fmadd_ps(pv, v[c], acc[g][c]);
    }
  }
  for (int g = 0; g < GB; ++g)
    for (int c = 0; c < CB; ++c) _mm512_storeu_ps(o + (g0 + g) * dpad + (c0 + c) * 16, acc[g][c]);
}

template <int GB>
void value_heads(const float* p, int64_t ld, int64_t col, int64_t g0, int64_t nc, const float* rows, int64_t dpad,
                 int64_t nb, float* o) {
  int64_t c0 = 0;
  for (; c0 + 4 <= nc; c0 += 4) value_tile<GB, 4>(p, ld, col, g0, c0, rows, dpad, nb, o);
  for (; c0 + 2 <= nc; c0 += 2) value_tile<GB, 2>(p, ld, col, g0, c0, rows, dpad, nb, o);
  for (; c0 < nc; ++c0) value_tile<GB, 1>(p, ld, col, g0, c0, rows, dpad, nb, o);
}

template <class T, class ValueAt>
void value_block(const float* p, int64_t ld, int64_t col, int64_t G, int64_t nc, __mmask16 last, ValueAt value_at,
                 int64_t j0, int64_t nb, float* rows, float* o) {
  const int64_t dpad = nc * 16;
  for (int64_t i = 0; i < nb; ++i) {
    const T* v = value_at(j0 + i);
    for (int64_t c = 0; c < nc; ++c)
      _mm512_storeu_ps(rows + i * dpad + c * 16, load_row(v + c * 16, c == nc - 1 ? last : kAll));
  }
  int64_t g0 = 0;
  for (; g0 + 4 <= G; g0 += 4) value_heads<4>(p, ld, col, g0, nc, rows, dpad, nb, o);
  for (; g0 + 2 <= G; g0 += 2) value_heads<2>(p, ld, col, g0, nc, rows, dpad, nb, o);
  for (; g0 < G; ++g0) value_heads<1>(p, ld, col, g0, nc, rows, dpad, nb, o);
}
}  // namespace simd
#endif

// Scalar rows of either element type, for the portable path.
inline float row_at(const float* p, int64_t i) { return p[i]; }
inline float row_at(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }

// Column limits of one query row: it sees columns [lo, hi) of the keys in
// the ranges (columns number the keys in range order).
struct RowLimits {
  int64_t lo = 0, hi = 0;
};

// Attention of R query rows that read the same KV head over the keys in
// ranges[0] and ranges[1] (each [begin, end)): the G heads of a GQA group for
// one decode token, or for a tile of consecutive prefill tokens, whose
// causal ends differ (limits: one per row; empty when every row sees every
// column). q_at(r) / out_at(r) locate row r's query and output (d floats);
// key_at(j) / value_at(j) a row pointer (const float* or const uint16_t*)
// for position j. A row's masked columns get weight exactly 0: its softmax
// runs over its own columns only.
template <class QAt, class OutAt, class KeyAt, class ValueAt>
void rows_attention(QAt q_at, OutAt out_at, int64_t R, int64_t d, float scale, const int64_t (&ranges)[2][2],
                    std::span<const RowLimits> limits, KeyAt key_at, ValueAt value_at, Scratch& s) {
  using T = std::remove_cv_t<std::remove_pointer_t<decltype(key_at(int64_t(0)))>>;
  const int64_t len = (ranges[0][1] - ranges[0][0]) + (ranges[1][1] - ranges[1][0]);
  const int64_t nc = (d + 15) / 16, dpad = nc * 16;
  s.fit(R, dpad, std::max<int64_t>(len, 1));
  float* scores = s.scores.data();
  const int64_t ld = len;
  // Softmax of each row over its own columns; the others get weight 0.
  auto normalise = [&](auto&& softmax_fn) {
    for (int64_t r = 0; r < R; ++r) {
      float* row = scores + r * ld;
      const int64_t lo = limits.empty() ? 0 : std::clamp<int64_t>(limits[size_t(r)].lo, 0, len);
      const int64_t hi = limits.empty() ? len : std::clamp<int64_t>(limits[size_t(r)].hi, lo, len);
      std::fill(row, row + lo, 0.0f);
      softmax_fn(row + lo, hi - lo);
      std::fill(row + hi, row + len, 0.0f);
    }
  };
#if MNEMO_KV_AVX512
  if (nc <= 16) {
    using namespace simd;
    const __mmask16 last = d % 16 ? tail_mask(d % 16) : kAll;
    for (int64_t r = 0; r < R; ++r) {
      const float* qr = q_at(r);
      std::fill(s.q.begin() + r * dpad, s.q.begin() + (r + 1) * dpad, 0.0f);
      std::copy(qr, qr + d, s.q.begin() + r * dpad);
    }
    // Rows kPrefetchKeys ahead are requested while a block is computed: a
    // paged cache's 16-key runs sit at scattered addresses, too short for
    // the hardware prefetcher, and the loads otherwise wait on memory.
    const int64_t row_bytes = d * int64_t(sizeof(T));
    auto blocks = [&](auto row_at, auto fn) {
      int64_t col = 0;
      for (const auto& rg : ranges)
        for (int64_t j0 = rg[0]; j0 < rg[1]; j0 += kKeyBlock) {
          const int64_t nb = std::min(kKeyBlock, rg[1] - j0);
          for (int64_t j = j0 + kPrefetchKeys, e = std::min(rg[1], j + kKeyBlock); j < e; ++j) {
            const char* p = reinterpret_cast<const char*>(row_at(j));
            for (int64_t b = 0; b < row_bytes; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
          }
          fn(j0, nb, col);
          col += nb;
        }
    };
    blocks(key_at, [&](int64_t j0, int64_t nb, int64_t col) {
      float* tile = s.tile.data();
      if (R >= kTransposeRows)
        score_block_many<T>(s.q.data(), R, nc, last, scale, key_at, j0, nb, tile, scores, ld, col);
      else if (nc == 4)
        score_block_few<4, T>(s.q.data(), R, nc, last, scale, key_at, j0, nb, tile, scores, ld, col);
      else if (nc == 8)
        score_block_few<8, T>(s.q.data(), R, nc, last, scale, key_at, j0, nb, tile, scores, ld, col);
      else
        score_block_few<0, T>(s.q.data(), R, nc, last, scale, key_at, j0, nb, tile, scores, ld, col);
    });
    normalise([](float* x, int64_t count) { softmax_row(x, count); });
    std::fill(s.o.begin(), s.o.begin() + R * dpad, 0.0f);
    blocks(value_at, [&](int64_t j0, int64_t nb, int64_t col) {
      value_block<T>(scores, ld, col, R, nc, last, value_at, j0, nb, s.rows.data(), s.o.data());
    });
    for (int64_t r = 0; r < R; ++r) std::copy(s.o.begin() + r * dpad, s.o.begin() + r * dpad + d, out_at(r));
    return;
  }
#endif
  // Portable: the same order of work (each row read once for all R rows).
  float* row = s.rows.data();
  int64_t col = 0;
  for (const auto& rg : ranges)
    for (int64_t j = rg[0]; j < rg[1]; ++j, ++col) {
      const T* k = key_at(j);
      for (int64_t i = 0; i < d; ++i) row[i] = row_at(k, i);
      for (int64_t r = 0; r < R; ++r) {
        const float* qr = q_at(r);
        float dot = 0;
        for (int64_t i = 0; i < d; ++i) dot += qr[i] * row[i];
        scores[r * ld + col] = dot * scale;
      }
    }
  normalise([](float* x, int64_t count) { softmax(x, count); });
  for (int64_t r = 0; r < R; ++r) std::fill(out_at(r), out_at(r) + d, 0.0f);
  col = 0;
  for (const auto& rg : ranges)
    for (int64_t j = rg[0]; j < rg[1]; ++j, ++col) {
      const T* v = value_at(j);
      for (int64_t i = 0; i < d; ++i) row[i] = row_at(v, i);
      for (int64_t r = 0; r < R; ++r) {
        const float p = scores[r * ld + col];
        float* o = out_at(r);
        for (int64_t i = 0; i < d; ++i) o[i] += p * row[i];
      }
    }
}

}  // namespace mnemo::kernels::cpu::attn
