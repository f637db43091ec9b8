// Decode GEMV on Q8_0 weights with AVX-512 VNNI, over the interleaved layout
// of quantize.h. A 64-byte line holds 4 values of each of 16 rows (as
// q + 128, unsigned); vpdpbusd multiplies it by 4 values of x broadcast to
// every lane (signed) and adds each row's four products into that row's
// int32 lane, so a block's 8 lines give its 16 row sums, exact. The sums
// start at -128 * sum(x's block), which takes the +128 back out; they are
// converted to f32 and scaled by the 16 rows' d_w (one vector) times d_x
// into one f32 accumulator per token: no per-row reduction, no scalar scale
// loads. A group of 16 rows is one sequential stream of whole lines at ~2.6
// instructions per line, where the former row-major kernel (8 row streams
// of 34-byte blocks) took ~13 and so held far fewer lines in flight from
// DRAM within the out-of-order window.
#include "kernels/cpu/gemv_q8.h"

#include "kernels/cpu/matmul_avx512.h"

#if MNEMO_AVX512 && defined(__AVX512VNNI__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

namespace mnemo::kernels::cpu::q8::avx512 {
namespace {

// Software prefetch of every line 4 units (4352 bytes) ahead. On top of
// the hardware streamer it measured (best of many calls, one thread, from
// DRAM, 768- and 2048-wide shapes) 38-40 GB/s against 34-36 without,
// 35-38 at 2 units, 35-38 at 8; to L2 only (prefetcht1) at 4-16 units,
// 32-37. Near the end of a matrix it reaches into the next one, which in
// the weight arena is the next matrix decode reads.
constexpr int64_t kPrefetch = 4 * int64_t(kQ8PairBytes);

inline __m512i bcast32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// One group (pairs units) for T tokens: x rows at xq + t * ldx, their scales
// and biases at xd / xb + t * ldb; y[t * ldy + j] for the group's first nrows rows.
template <int T>
void group(const uint8_t* g, int64_t pairs, const int8_t* xq, int64_t ldx, const float* xd, const int32_t* xb,
           int64_t ldb, int64_t nrows, float* y, int64_t ldy) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const uint8_t* u = g + p * int64_t(kQ8PairBytes);
    for (int64_t l = 0; l < int64_t(kQ8PairBytes); l += 64)
      _mm_prefetch(reinterpret_cast<const char*>(u + kPrefetch + l), _MM_HINT_T0);
    __m512i i0[T], i1[T];
    for (int t = 0; t < T; ++t) {
      i0[t] = _mm512_set1_epi32(xb[t * ldb + 2 * p]);
      i1[t] = _mm512_set1_epi32(xb[t * ldb + 2 * p + 1]);
    }
    for (int k = 0; k < 8; ++k) {
      const __m512i w0 = _mm512_loadu_si512(u + 64 + 64 * k);
      const __m512i w1 = _mm512_loadu_si512(u + 64 + 512 + 64 * k);
      for (int t = 0; t < T; ++t) {
        const int8_t* x = xq + t * ldx + 64 * p;
        i0[t] = _mm512_dpbusd_epi32(i0[t], w0, bcast32(x + 4 * k));
        i1[t] = _mm512_dpbusd_epi32(i1[t], w1, bcast32(x + 32 + 4 * k));
      }
    }
    const __m512 s0 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(u)));
    const __m512 s1 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(u + 32)));
    for (int t = 0; t < T; ++t) {
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0[t]), _mm512_mul_ps(s0, _mm512_set1_ps(xd[t * ldb + 2 * p])), acc[t]);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1[t]), _mm512_mul_ps(s1, _mm512_set1_ps(xd[t * ldb + 2 * p + 1])), acc[t]);
    }
  }
  const __mmask16 m = __mmask16((1u << nrows) - 1);
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * ldy, m, acc[t]);
}

// Tokens per pass over a group: its lines are loaded once for T tokens
// (4: 8 int32 and 4 f32 accumulators); more tokens pass again over the
// group, then in L1/L2.
constexpr int64_t kTokens = 4;

}  // namespace

void gemv_rows(const QuantizedX& xq, const MatrixView& w, int64_t r0, int64_t r1, float* y) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t pairs = (w.cols / kQ8Block + 1) / 2, ldb = xq.ld / kQ8Block;
  const size_t gb = q8_group_bytes(w.cols);
  for (int64_t g = r0 / kQ8Rows; g * kQ8Rows < r1; ++g) {
    const int64_t nrows = std::min(kQ8Rows, r1 - g * kQ8Rows);
    for (int64_t t0 = 0; t0 < xq.n; t0 += kTokens) {
      const int8_t* x = xq.qs + t0 * xq.ld;
      const float* xd = xq.d + t0 * ldb;
      const int32_t* xb = xq.bias + t0 * ldb;
      float* yt = y + t0 * w.rows + g * kQ8Rows;
      const uint8_t* gp = base + size_t(g) * gb;
      switch (std::min(kTokens, xq.n - t0)) {
        case 1: group<1>(gp, pairs, x, xq.ld, xd, xb, ldb, nrows, yt, w.rows); break;
        case 2: group<2>(gp, pairs, x, xq.ld, xd, xb, ldb, nrows, yt, w.rows); break;
        case 3: group<3>(gp, pairs, x, xq.ld, xd, xb, ldb, nrows, yt, w.rows); break;
        default: group<4>(gp, pairs, x, xq.ld, xd, xb, ldb, nrows, yt, w.rows); break;
      }
    }
  }
}

}  // namespace mnemo::kernels::cpu::q8::avx512

#else

namespace mnemo::kernels::cpu::q8::avx512 {
// Never called: vnni_supported() is false. It keeps the link whole.
void gemv_rows(const QuantizedX&, const MatrixView&, int64_t, int64_t, float*) { __builtin_trap(); }
}  // namespace mnemo::kernels::cpu::q8::avx512

#endif
