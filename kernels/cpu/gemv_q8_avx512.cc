// Decode GEMV on Q8_0 weights with AVX-512 VNNI. Per pair of 32-blocks (one
// 64-byte register of x): vpdpbusd multiplies unsigned by signed bytes, so it
// takes |x| as the unsigned side and w with x's sign moved onto it (|x| *
// sign(x) w = x w; |q| <= 127 on both sides, so negating w cannot overflow).
// The four-product int32 lanes of each block are exact; they are converted
// to f32 and scaled by d_x * d_w into an f32 accumulator, one per row, and
// reduced once per row. R rows per step share each x load; tokens run one
// after another over the same R rows, which are then in L1.
#include "kernels/cpu/gemv_q8.h"

#include "kernels/cpu/matmul_avx512.h"

#if MNEMO_AVX512 && defined(__AVX512VNNI__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <vector>

namespace mnemo::kernels::cpu::q8::avx512 {
namespace {

// f16 -> f32 by table (256 KiB, as ggml's table_f32_f16): a scale then
// costs scalar loads, not vector uops, which the dot product needs. (A
// vector gather of 16 scales measured slower still: gathers are microcoded.)
const float* f16_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    for (uint32_t h = 0; h < 65536; ++h) v[h] = f16_to_f32(uint16_t(h));
    return v;
  }();
  return t.data();
}

// Software prefetch of each row stream 1 KiB ahead, one per 68-byte step
// (every line at least once). Decode streams weights from DRAM, where this
// kernel is limited by bytes in flight, not by its arithmetic (called on
// L2/L3-resident weights it runs at 60-80 GB/s on one core): with ~13 uops
// per 68 bytes per row the out-of-order window holds fewer outstanding
// lines than the BF16 kernel's ~5 uops per 64 bytes. Measured +10-15% GB/s
// from DRAM at 512-1024 bytes; 2-4 KiB gained less.
constexpr int64_t kPrefetch = 1024;

template <int R>
void block(const uint8_t* w, size_t rb, int64_t nb, const int8_t* xq, const float* xd, const float* f16, float* y) {
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const __m512i zero = _mm512_setzero_si512();
  auto step = [&](int64_t b, bool tail) {
    const __m512i qx = _mm512_load_si512(xq + b * kQ8Block);
    const __m512i ux = _mm512_abs_epi8(qx);
    const __mmask64 neg = _mm512_movepi8_mask(qx);
    const __m512 dx = _mm512_insertf32x8(_mm512_set1_ps(xd[b]), _mm256_set1_ps(xd[b + 1]), 1);  // xd is zero-padded
    for (int r = 0; r < R; ++r) {
      const auto* b0 = reinterpret_cast<const BlockQ8_0*>(w + r * rb) + b;
      _mm_prefetch(reinterpret_cast<const char*>(b0) + kPrefetch, _MM_HINT_T0);
      __m512i qw = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0[0].qs)));
      if (!tail) qw = _mm512_inserti64x4(qw, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0[1].qs)), 1);
      else qw = _mm512_zextsi256_si512(_mm512_castsi512_si256(qw));
      const __m512i sw = _mm512_mask_sub_epi8(qw, neg, zero, qw);
      const __m512i dot = _mm512_dpbusd_epi32(zero, ux, sw);
      const __m512 dw = _mm512_insertf32x8(_mm512_set1_ps(f16[b0[0].d]), _mm256_set1_ps(tail ? 0.0f : f16[b0[1].d]), 1);
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), dx), dw, acc[r]);
    }
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) step(b, false);
  if (b < nb) step(b, true);
  for (int r = 0; r < R; ++r) y[r] = _mm512_reduce_add_ps(acc[r]);
}

}  // namespace

void gemv_rows(const QuantizedX& xq, const MatrixView& w, int64_t r0, int64_t r1, float* y) {
  const size_t rb = row_bytes(DType::Q8_0, w.cols);
  const int64_t nb = w.cols / kQ8Block;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const float* f16 = f16_table();
  int64_t r = r0;
  for (; r + kRows <= r1; r += kRows)
    for (int64_t t = 0; t < xq.n; ++t)
      block<kRows>(base + size_t(r) * rb, rb, nb, xq.qs + t * xq.ld, xq.d + t * xq.ld / kQ8Block, f16, y + t * w.rows + r);
  for (; r < r1; ++r)
    for (int64_t t = 0; t < xq.n; ++t)
      block<1>(base + size_t(r) * rb, rb, nb, xq.qs + t * xq.ld, xq.d + t * xq.ld / kQ8Block, f16, y + t * w.rows + r);
}

}  // namespace mnemo::kernels::cpu::q8::avx512

#else

namespace mnemo::kernels::cpu::q8::avx512 {
// Never called: vnni_supported() is false. It keeps the link whole.
void gemv_rows(const QuantizedX&, const MatrixView&, int64_t, int64_t, float*) { __builtin_trap(); }
}  // namespace mnemo::kernels::cpu::q8::avx512

#endif
