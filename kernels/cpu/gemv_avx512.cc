// Decode GEMV (and small-batch GEMV): y[t, r] = x[t] . w[r] for t < n <= 16.
// Memory-bound: the only goal is to keep enough weight bytes in flight. Each
// thread starts on a contiguous slice of rows (parallel_units: then it helps
// the others), R rows at a time as R parallel streams for the prefetchers
// (one token: 128-row panels, each stream 16 rows long), converting 32
// weights per load to f32 in registers and FMA-ing them in f32, so
// precision matches an f32 dot product.

#include <span>

#include <algorithm>
#include <vector>

#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/parallel.h"

#if MNEMO_AVX512
// GCC 12 flags the deliberately undefined vectors inside its own intrinsics
// (_mm512_undefined_*) once they are inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace mnemo::kernels::cpu::avx512 {
namespace {

// Loads 32 consecutive weights as two f32 vectors (lo, hi) whose lane order
// matches the prepared x (see prepare_x). m masks the tail of a row.
struct LoadF32 {
  using T = float;
  static void load(const float* p, __m512& lo, __m512& hi) {
    lo = _mm512_loadu_ps(p);
    hi = _mm512_loadu_ps(p + 16);
  }
  static void load(const float* p, __mmask32 m, __m512& lo, __m512& hi) {
    lo = _mm512_maskz_loadu_ps(__mmask16(m), p);
    hi = _mm512_maskz_loadu_ps(__mmask16(m >> 16), p + 16);
  }
};

struct LoadF16 {
  using T = uint16_t;
  static void load(const uint16_t* p, __m512& lo, __m512& hi) {
    lo = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    hi = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16)));
  }
  static void load(const uint16_t* p, __mmask32 m, __m512& lo, __m512& hi) {
    lo = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(__mmask16(m), p));
    hi = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(__mmask16(m >> 16), p + 16));
  }
};

// One 64-byte load gives the even-indexed weights (shifted into the high
// half) and the odd-indexed ones (low half masked off): x is permuted to match.
struct LoadBF16 {
  using T = uint16_t;
  static void split(__m512i v, __m512& lo, __m512& hi) {
    lo = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    hi = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0xffff0000u))));
  }
  static void load(const uint16_t* p, __m512& lo, __m512& hi) { split(_mm512_loadu_si512(p), lo, hi); }
  static void load(const uint16_t* p, __mmask32 m, __m512& lo, __m512& hi) {
    split(_mm512_maskz_loadu_epi16(m, p), lo, hi);
  }
};

// acc[r][t] over rows w[0..R) and tokens xp[0..T) (rows of stride ldx).
// No software prefetch: the hardware streamers already keep the memory
// system busy, and measured prefetching (1-8 KiB ahead, this block's rows or
// the next block's) only cost slots in the out-of-order window.
// One token keeps lo and hi halves in separate accumulators (two FMA chains
// per row); several tokens chain both FMAs into one accumulator, which
// leaves registers for x so it is loaded once per step, not once per row.
template <class L, int R, int T>
void block(const typename L::T* w, int64_t ldw, int64_t cols, const float* xp, int64_t ldx, float* y,
           int64_t ldy) {
  constexpr int A = T == 1 ? 2 : 1;
  __m512 acc[R][T][A];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t)
      for (int a = 0; a < A; ++a) acc[r][t][a] = _mm512_setzero_ps();
  auto step = [&](int64_t k, auto load_w) {
    __m512 xlo[T], xhi[T];
    for (int t = 0; t < T; ++t) {
      xlo[t] = _mm512_load_ps(xp + t * ldx + k);
      xhi[t] = _mm512_load_ps(xp + t * ldx + k + 16);
    }
    for (int r = 0; r < R; ++r) {
      __m512 lo, hi;
      load_w(w + r * ldw + k, lo, hi);
      for (int t = 0; t < T; ++t) {
        acc[r][t][0] = _mm512_fmadd_ps(lo, xlo[t], acc[r][t][0]);
        acc[r][t][A - 1] = _mm512_fmadd_ps(hi, xhi[t], acc[r][t][A - 1]);
      }
    }
  };
  const int64_t full = cols & ~int64_t(31);
  for (int64_t k = 0; k < full; k += 32)
    step(k, [](const typename L::T* p, __m512& lo, __m512& hi) { L::load(p, lo, hi); });
  if (full < cols) {
    const __mmask32 m = __mmask32((uint64_t(1) << (cols - full)) - 1);
    step(full, [m](const typename L::T* p, __m512& lo, __m512& hi) { L::load(p, m, lo, hi); });
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t)
      y[t * ldy + r] = _mm512_reduce_add_ps(A == 2 ? _mm512_add_ps(acc[r][t][0], acc[r][t][A - 1]) : acc[r][t][0]);
}

// Rows per block: more concurrent row streams keep more weight bytes in
// flight (8 streams measured ~10% faster than 4 at n = 1); with several
// tokens, R*T accumulators plus 2*T x vectors stay within 32 registers.
constexpr int kRows1 = 8;  // one token: 16 accumulators
constexpr int kRows = 4;   // up to 4 tokens: 16 accumulators, 8 x vectors

template <class L, int R>
void rows_all_tokens(const typename L::T* w, int64_t ldw, int64_t cols, const float* xp, int64_t ldx,
                     int64_t n, float* y, int64_t ldy) {
  if constexpr (R == kRows1) {  // only ever called with one token
    block<L, R, 1>(w, ldw, cols, xp, ldx, y, ldy);
  } else {
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) block<L, R, 4>(w, ldw, cols, xp + t * ldx, ldx, y + t * ldy, ldy);
    if (n - t == 3) block<L, R, 3>(w, ldw, cols, xp + t * ldx, ldx, y + t * ldy, ldy);
    if (n - t == 2) block<L, R, 2>(w, ldw, cols, xp + t * ldx, ldx, y + t * ldy, ldy);
    if (n - t == 1) block<L, R, 1>(w, ldw, cols, xp + t * ldx, ldx, y + t * ldy, ldy);
  }
}

// One token: a panel of kPanel consecutive rows is read as kRows1 streams
// of kPanel / kRows1 consecutive rows each, block i taking row i of every
// stream. Each stream is then one long sequential run of memory, which the
// hardware prefetchers follow far better than kRows1 adjacent rows read side
// by side (each only a few KiB long): +15-20% single-thread GB/s measured on
// 768- and 2048-column BF16 matrices. The sums are those of block<L, kRows1, 1>.
constexpr int64_t kPanel = 128;

template <class L>
void panel(const typename L::T* w, int64_t cols, const float* xp, int64_t ldx, float* y) {
  constexpr int64_t K = kPanel / kRows1;
  float out[kRows1];
  for (int64_t i = 0; i < K; ++i) {
    block<L, kRows1, 1>(w + i * cols, K * cols, cols, xp, ldx, out, 1);
    for (int s = 0; s < kRows1; ++s) y[s * K + i] = out[s];
  }
}

// Several matrices sharing x in one parallel step (a layer's q/k/v or
// gate/up cost one dispatch instead of one each): their units (panels of
// kPanel rows for one token, R rows for several), numbered in order, go to
// the team through parallel_units, so each thread streams a contiguous run
// of rows and one that is slow to start leaves its rows to the others. A
// row gives the same sum whichever unit or thread computes it.
template <class L, int R>
void run_rows_many(const float* xp, int64_t ldx, int64_t n, std::span<const MatrixView> ws, std::span<float* const> ys) {
  constexpr int64_t U = R == kRows1 ? kPanel : R;  // rows per unit
  constexpr size_t kMax = 4;
  int64_t first_unit[kMax + 1] = {0};
  const size_t nm = std::min(ws.size(), kMax);
  for (size_t m = 0; m < nm; ++m) first_unit[m + 1] = first_unit[m] + (ws[m].rows + U - 1) / U;
  parallel_units(first_unit[nm], [&](int64_t u) {
    size_t m = 0;
    while (u >= first_unit[m + 1]) ++m;
    const auto* wd = static_cast<const typename L::T*>(ws[m].data);
    const int64_t rows = ws[m].rows, cols = ws[m].cols;
    const int64_t r0 = (u - first_unit[m]) * U, r1 = std::min(rows, r0 + U);
    if constexpr (U == kPanel) {
      if (r1 - r0 == U) {
        panel<L>(wd + r0 * cols, cols, xp, ldx, ys[m] + r0);
        return;
      }
    }
    int64_t r = r0;
    for (; r + R <= r1; r += R) rows_all_tokens<L, R>(wd + r * cols, cols, cols, xp, ldx, n, ys[m] + r, rows);
    for (; r < r1; ++r) rows_all_tokens<L, 1>(wd + r * cols, cols, cols, xp, ldx, n, ys[m] + r, rows);
  });
  if (ws.size() > kMax) run_rows_many<L, R>(xp, ldx, n, ws.subspan(kMax), ys.subspan(kMax));
}

template <class L>
void run_many(const float* xp, int64_t ldx, int64_t n, std::span<const MatrixView> ws, std::span<float* const> ys) {
  if (n == 1) run_rows_many<L, kRows1>(xp, ldx, n, ws, ys);
  else run_rows_many<L, kRows>(xp, ldx, n, ws, ys);
}

template <class L>
void run(const float* xp, int64_t ldx, int64_t n, const MatrixView& w, float* y) {
  run_many<L>(xp, ldx, n, std::span(&w, 1), std::span(&y, 1));
}

// x rows padded to a multiple of 32 with zeros (so masked weight tails meet
// zeros); for BF16 each 32-block is reordered [even | odd] to match LoadBF16.
// 64-byte aligned: split loads of x, once per row, cost a third of the
// in-cache throughput.
float* prepare_x(const float* x, int64_t n, int64_t cols, bool deinterleave, std::vector<float>& buf,
                 int64_t& ldx) {
  ldx = (cols + 31) & ~int64_t(31);
  buf.assign(size_t(n * ldx + 16), 0.0f);
  float* xp = buf.data() + (16 - (reinterpret_cast<uintptr_t>(buf.data()) / 4) % 16) % 16;
  for (int64_t t = 0; t < n; ++t) {
    float* dst = xp + t * ldx;
    const float* src = x + t * cols;
    if (!deinterleave) {
      std::copy(src, src + cols, dst);
      continue;
    }
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
      const __m512 a = _mm512_loadu_ps(src + c), b = _mm512_loadu_ps(src + c + 16);
      _mm512_store_ps(dst + c, _mm512_permutex2var_ps(a, even, b));
      _mm512_store_ps(dst + c + 16, _mm512_permutex2var_ps(a, odd, b));
    }
    for (; c < cols; ++c) {
      const int64_t blk = c & ~int64_t(31), i = c & 31;
      dst[blk + (i & 1) * 16 + i / 2] = src[c];
    }
  }
  return xp;
}

}  // namespace

void gemv(const float* x, int64_t n, const MatrixView& w, float* y) {
  thread_local std::vector<float> buf;
  int64_t ldx = 0;
  const float* xp = prepare_x(x, n, w.cols, w.dtype == DType::BF16, buf, ldx);
  switch (w.dtype) {
    case DType::F32: run<LoadF32>(xp, ldx, n, w, y); break;
    case DType::F16: run<LoadF16>(xp, ldx, n, w, y); break;
    case DType::BF16: run<LoadBF16>(xp, ldx, n, w, y); break;
    case DType::Q8_0: break;  // never here: matmul.cc sends Q8_0 to q8::gemv
  }
}

void gemv_many(const float* x, int64_t n, std::span<const MatrixView> ws, std::span<float* const> ys) {
  thread_local std::vector<float> buf;
  int64_t ldx = 0;
  const float* xp = prepare_x(x, n, ws[0].cols, ws[0].dtype == DType::BF16, buf, ldx);
  switch (ws[0].dtype) {
    case DType::F32: run_many<LoadF32>(xp, ldx, n, ws, ys); break;
    case DType::F16: run_many<LoadF16>(xp, ldx, n, ws, ys); break;
    case DType::BF16: run_many<LoadBF16>(xp, ldx, n, ws, ys); break;
    case DType::Q8_0: break;  // never here: matmul.cc sends Q8_0 to q8::gemv_many
  }
}

}  // namespace mnemo::kernels::cpu::avx512
#endif  // MNEMO_AVX512
