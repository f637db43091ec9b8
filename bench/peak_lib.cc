#include "bench/peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>

#if defined(__AVX512F__) && defined(__AVX512BF16__)
// GCC 12 flags the deliberately undefined vectors inside its own intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#endif

namespace mnemo::bench {
namespace {

#if defined(__AVX512F__) && defined(__AVX512BF16__)
// 12 independent accumulators cover the FMA latency (4 cycles) times the
// two FMA pipes with room to spare.
template <PeakKind K>
float chains(long iters) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(float(i) * 1e-9f);
  const __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-9f);
  const __m512bh h = (__m512bh)_mm512_set1_epi16(0x3f80);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) {
      if constexpr (K == PeakKind::F32Fma) a[i] = _mm512_fmadd_ps(a[i], b, c);
      else a[i] = _mm512_dpbf16_ps(a[i], h, h);
    }
  }
  __m512 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
}
#endif

}  // namespace

double measure_peak_gflops(PeakKind kind, int threads) {
#if defined(__AVX512F__) && defined(__AVX512BF16__)
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  const long iters = 5'000'000;
  const double flops_per_op = kind == PeakKind::F32Fma ? 32 : 64;
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 15; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    float s = 0;
#pragma omp parallel reduction(+ : s)
    s += kind == PeakKind::F32Fma ? chains<PeakKind::F32Fma>(iters) : chains<PeakKind::Bf16Dot>(iters);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + s;
    best = std::max(best, double(iters) * 12 * flops_per_op * threads / sec / 1e9);
  }
  omp_set_num_threads(saved);
  return best;
#else
  (void)kind;
  (void)threads;
  return 0;
#endif
}

}  // namespace mnemo::bench
