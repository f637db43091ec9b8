// Prefill GEMM: y[n, N] = x[n, K] . w[N, K]^T for n > kGemvMaxTokens.
//
// Goto-style blocking. Each thread owns a contiguous range of output features
// (weight rows), so weights are converted and packed once. Per (NC features,
// KC depth) block the weights are transposed into micro-panels [k][32] that
// live in L2; x is packed once per call into [KC block][MR tokens][KC], so a
// micro-panel of x (MR x KC) stays in L1 while the kernel sweeps the weight
// micro-panels. The micro-kernel keeps MR x 32 outputs in 2*MR registers and
// broadcasts one x element (f32) or one x pair (bf16) per token per step.
//
// f32 flavour: weights converted to f32 in the pack, exact f32 FMA.
// bf16 flavour: BF16 weights packed as is in k-pairs, x rounded to bf16,
// vdpbf16ps (two multiply-adds per lane, f32 accumulation).

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/transpose16.h"

#if MNEMO_AVX512
// GCC 12 flags the deliberately undefined vectors inside its own intrinsics
// (_mm512_undefined_*) once they are inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace mnemo::kernels::cpu::avx512 {
namespace {

constexpr int kMR = 14;  // tokens per micro-tile: 28 accumulators + 2 weight vectors
constexpr int kNR = 32;  // features per micro-tile: two vectors
constexpr int64_t kNC = 256;  // features per packed weight block (L2-resident)
// Depth steps per block: an x micro-panel (kMR x kSteps lanes, 14 KiB) in L1
// and a weight micro-panel (kSteps x kNR lanes, 32 KiB) streaming from L2.
constexpr int64_t kSteps = 256;

// A per-thread scratch buffer kept across calls: a fresh multi-MiB
// allocation per layer would be page-faulted and zeroed every time.
float* scratch(int slot, int64_t count) {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<float[], Free> buf[2];
  thread_local int64_t cap[2] = {0, 0};
  if (cap[slot] < count) {
    const size_t bytes = (size_t(count) * sizeof(float) + 63) & ~size_t(63);
    buf[slot].reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    cap[slot] = count;
  }
  return buf[slot].get();
}

// 16 weights of one row from column c (count valid, rest zero), as f32 lanes.
__m512 load16_f32(const MatrixView& w, int64_t row, int64_t c, int64_t count) {
  const __mmask16 m = count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1);
  const int64_t i = row * w.cols + c;
  switch (w.dtype) {
    case DType::F32: return _mm512_maskz_loadu_ps(m, static_cast<const float*>(w.data) + i);
    case DType::F16:
      return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w.data) + i));
    case DType::BF16: {
      const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w.data) + i));
      return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    }
    case DType::Q8_0: break;  // never here: matmul.cc sends Q8_0 to q8::gemm
  }
  return _mm512_setzero_ps();
}

// 32 BF16 weights (16 k-pairs) of one row from column c, as 32-bit lanes.
__m512 load16_pairs(const MatrixView& w, int64_t row, int64_t c, int64_t count) {
  const __mmask32 m = count >= 32 ? __mmask32(0xffffffffu) : __mmask32((uint64_t(1) << count) - 1);
  const auto* p = static_cast<const uint16_t*>(w.data) + row * w.cols + c;
  return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, p));
}

// Packs weight rows [j0, j0+nc) x depth [k0, k0+kc) into micro-panels of kNR
// rows: panel p holds, for each step s < steps, kNR 32-bit lanes (an f32
// weight, or a bf16 k-pair), rows past N and depth past K zero-filled.
// Rows go 16 at a time through a register transpose.
template <bool Pairs>
void pack_w(const MatrixView& w, int64_t j0, int64_t nc, int64_t k0, int64_t kc, int64_t steps, float* dst) {
  constexpr int64_t kPer = Pairs ? 32 : 16;  // weights per 16 lanes
  __m512 r[16];
  const int64_t nc_pad = (nc + kNR - 1) / kNR * kNR;
  for (int64_t jj = 0; jj < nc_pad; jj += 16) {
    float* panel = dst + (jj / kNR) * steps * kNR + (jj % kNR);
    for (int64_t k = 0; k < kc; k += kPer) {
      for (int i = 0; i < 16; ++i) {
        const int64_t row = j0 + jj + i;
        if (jj + i >= nc || row >= w.rows) {
          r[i] = _mm512_setzero_ps();
          continue;
        }
        r[i] = Pairs ? load16_pairs(w, row, k0 + k, kc - k) : load16_f32(w, row, k0 + k, kc - k);
      }
      transpose16(r);
      const int64_t s0 = k / (Pairs ? 2 : 1);
      for (int i = 0; i < 16; ++i) _mm512_store_ps(panel + (s0 + i) * kNR, r[i]);
    }
  }
}

// Micro-kernel. a: kMR token rows at stride kSteps lanes; b: [steps][kNR];
// c: kMR x kNR outputs at stride ldc, m x nv of them valid.
template <bool Pairs>
void kernel(int64_t steps, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
            int m, int64_t nv) {
  __m512 acc[kMR][2];
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t s = 0; s < steps; ++s) {
    const __m512 b0 = _mm512_load_ps(b + s * kNR), b1 = _mm512_load_ps(b + s * kNR + 16);
#pragma GCC unroll 14
    for (int i = 0; i < kMR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * kSteps + s]);
      if constexpr (Pairs) {
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], (__m512bh)ai, (__m512bh)b0);
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], (__m512bh)ai, (__m512bh)b1);
      } else {
        acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
      }
    }
  }
  const __mmask16 m0 = nv >= 16 ? __mmask16(0xffff) : __mmask16((1u << nv) - 1);
  const __mmask16 m1 = nv >= 32 ? __mmask16(0xffff) : nv <= 16 ? 0 : __mmask16((1u << (nv - 16)) - 1);
  for (int i = 0; i < kMR; ++i) {
    if (i >= m) break;
    float* ci = c + i * ldc;
    if (accumulate) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
    _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
  }
}

// x packed as [K block][token block of kMR][kMR][kc steps] lanes: f32 values,
// or bf16 pairs (round to nearest even) in 32-bit lanes. Zero-padded.
template <bool Pairs>
void pack_x(const float* x, int64_t n, int64_t cols, int64_t kc_steps, int64_t kblocks, int64_t mblocks,
            float* dst) {
  constexpr int64_t kPer = Pairs ? 2 : 1;
  const int64_t kc = kc_steps * kPer;
  parallel_for(kblocks * mblocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t kb = b / mblocks, mb = b % mblocks;
      float* blk = dst + (kb * mblocks + mb) * kMR * kc_steps;
      for (int i = 0; i < kMR; ++i) {
        float* row = blk + i * kc_steps;
        const int64_t t = mb * kMR + i;
        const int64_t k0 = kb * kc, count = t < n ? std::clamp<int64_t>(cols - k0, 0, kc) : 0;
        const float* src = x + t * cols + k0;
        if constexpr (!Pairs) {
          std::copy(src, src + count, row);
          std::fill(row + count, row + kc_steps, 0.0f);
        } else {
          auto* out = reinterpret_cast<uint16_t*>(row);
          int64_t k = 0;
          for (; k + 32 <= count; k += 32) {
            const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k));
            _mm512_storeu_si512(out + k, (__m512i)v);
          }
          for (; k < count; ++k) out[k] = f32_to_bf16(src[k]);
          std::fill(out + count, out + kc, uint16_t(0));
        }
      }
    }
  });
}

template <bool Pairs>
void gemm(const float* x, int64_t n, const MatrixView& w, float* y) {
  constexpr int64_t kPer = Pairs ? 2 : 1;
  const int64_t K = w.cols, N = w.rows;
  const int64_t kc = kSteps * kPer;
  const int64_t kblocks = (K + kc - 1) / kc, mblocks = (n + kMR - 1) / kMR;
  float* xp = scratch(0, kblocks * mblocks * kMR * kSteps);
  pack_x<Pairs>(x, n, K, kSteps, kblocks, mblocks, xp);
  run_on_team([&](int id, int nt) {
    const int64_t units = (N + kNR - 1) / kNR;
    const int64_t j_begin = std::min(N, units * id / nt * kNR), j_end = std::min(N, units * (id + 1) / nt * kNR);
    float* wp = scratch(1, kNC * kSteps);
    for (int64_t jc = j_begin; jc < j_end; jc += kNC) {
      const int64_t nc = std::min(kNC, j_end - jc);
      for (int64_t kb = 0; kb < kblocks; ++kb) {
        const int64_t k0 = kb * kc, kcur = std::min(kc, K - k0);
        const int64_t steps = (kcur + 16 * kPer - 1) / (16 * kPer) * 16;  // whole transposes
        pack_w<Pairs>(w, jc, nc, k0, kcur, steps, wp);
        for (int64_t mb = 0; mb < mblocks; ++mb) {
          const float* a = xp + (kb * mblocks + mb) * kMR * kSteps;
          const int m = int(std::min<int64_t>(kMR, n - mb * kMR));
          for (int64_t jr = 0; jr < nc; jr += kNR)
            kernel<Pairs>(steps, a, wp + (jr / kNR) * steps * kNR, y + mb * kMR * N + jc + jr, N,
                          kb > 0, m, std::min<int64_t>(kNR, nc - jr));
        }
      }
    }
  });
}

}  // namespace

void gemm_f32(const float* x, int64_t n, const MatrixView& w, float* y) { gemm<false>(x, n, w, y); }
void gemm_bf16(const float* x, int64_t n, const MatrixView& w, float* y) { gemm<true>(x, n, w, y); }

}  // namespace mnemo::kernels::cpu::avx512
#endif  // MNEMO_AVX512
