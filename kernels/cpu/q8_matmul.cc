// Q8_0 matmul: x quantization, the portable integer GEMV, the dispatch
// between it and the VNNI kernel, and prefill through dequantized panels.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/gemv_q8.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/quantize.h"

namespace mnemo::kernels::cpu::q8 {

void quantize_x(const float* x, int64_t n, int64_t cols, QuantizedX& out) {
  assert(cols % kQ8Block == 0);
  out.n = n;
  out.ld = (cols + 63) & ~int64_t(63);
  out.qs_buf.assign(size_t(n * out.ld + 64), 0);
  out.d_buf.assign(size_t(n * out.ld / kQ8Block), 0.0f);
  out.bias_buf.assign(size_t(n * out.ld / kQ8Block), 0);
  out.qs = out.qs_buf.data() + (64 - reinterpret_cast<uintptr_t>(out.qs_buf.data()) % 64) % 64;
  out.d = out.d_buf.data();
  out.bias = out.bias_buf.data();
  for (int64_t t = 0; t < n; ++t) {
    // The scale stays f32 (llama.cpp rounds it to f16): x is requantized
    // every call, so there is nothing to save by narrowing it.
    for (int64_t b = 0; b < cols / kQ8Block; ++b) {
      int8_t* q = out.qs + t * out.ld + b * kQ8Block;
      const int64_t i = t * out.ld / kQ8Block + b;
      out.d[i] = quantize_block_q8(x + t * cols + b * kQ8Block, q);
      int32_t sum = 0;
      for (int64_t c = 0; c < kQ8Block; ++c) sum += q[c];
      out.bias[i] = -128 * sum;
    }
  }
}

void gemv_rows_portable(const QuantizedX& xq, const MatrixView& w, int64_t r0, int64_t r1, float* y) {
  assert(r0 % kQ8Rows == 0);
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t nb = w.cols / kQ8Block;
  for (int64_t g = r0 / kQ8Rows; g * kQ8Rows < r1; ++g) {
    const int64_t nrows = std::min(kQ8Rows, r1 - g * kQ8Rows);
    for (int64_t t = 0; t < xq.n; ++t) {
      const int8_t* qx = xq.qs + t * xq.ld;
      const float* dx = xq.d + t * xq.ld / kQ8Block;
      float acc[kQ8Rows] = {};
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* u = base + q8_unit_offset(w.cols, g * kQ8Rows, b);
        const uint8_t* v = u + 4 * kQ8Rows + (b % 2) * kQ8Rows * kQ8Block;
        for (int64_t j = 0; j < nrows; ++j) {
          int32_t sum = 0;
          for (int64_t c = 0; c < kQ8Block; ++c)
            sum += int32_t(qx[b * kQ8Block + c]) * int32_t(int8_t(v[(c / 4) * 64 + 4 * j + c % 4] ^ 0x80));
          uint16_t dh;
          std::memcpy(&dh, u + (b % 2) * 2 * kQ8Rows + 2 * j, 2);
          acc[j] += float(sum) * (dx[b] * f16_to_f32(dh));
        }
      }
      std::copy_n(acc, nrows, y + t * w.rows + g * kQ8Rows);
    }
  }
}

namespace {

void rows(const QuantizedX& xq, const MatrixView& w, int64_t r0, int64_t r1, float* y) {
  if (avx512::vnni_supported()) avx512::gemv_rows(xq, w, r0, r1, y);
  else gemv_rows_portable(xq, w, r0, r1, y);
}

}  // namespace

// Rows per unit of work handed out by parallel_units: two row groups (26-70
// KiB at 768-2048 columns), small enough that a layer's smallest matrices
// still split into a dozen or more units. Against one static slice per
// thread (parallel_for) it measured, 123M Q8_0 decode at 2 threads on the
// shared 2-core machine (9 interleaved rounds, load 3-5), a median 299 vs
// 236 tok/s, best 391 vs 266: a descheduled or late worker no longer holds
// up each of the ~50 GEMV steps of a token.
constexpr int64_t kUnitRows = 2 * kQ8Rows;

void gemv(const float* x, int64_t n, const MatrixView& w, float* y) {
  assert(w.dtype == DType::Q8_0 && n <= kGemvMaxTokens);
  thread_local QuantizedX buf;
  QuantizedX& xq = buf;  // the team's threads see the caller's, not their own thread_local
  quantize_x(x, n, w.cols, xq);
  parallel_units((w.rows + kUnitRows - 1) / kUnitRows,
                 [&](int64_t u) { rows(xq, w, u * kUnitRows, std::min(w.rows, (u + 1) * kUnitRows), y); });
}

// The units of all matrices, numbered in order, go to the team through
// parallel_units, so a layer's q/k/v (or gate/up) cost one parallel step,
// not one each; each thread streams a contiguous run of rows, and one that
// is slow to start (or descheduled) leaves its units to the others.
void gemv_many(const float* x, int64_t n, std::span<const MatrixView> ws, std::span<float* const> ys) {
  thread_local QuantizedX buf;
  QuantizedX& xq = buf;  // the team's threads see the caller's, not their own thread_local
  quantize_x(x, n, ws[0].cols, xq);
  constexpr int64_t R = kUnitRows;
  std::vector<int64_t> first_unit(ws.size() + 1, 0);
  for (size_t m = 0; m < ws.size(); ++m) first_unit[m + 1] = first_unit[m] + (ws[m].rows + R - 1) / R;
  parallel_units(first_unit.back(), [&](int64_t u) {
    size_t m = 0;
    while (u >= first_unit[m + 1]) ++m;
    const int64_t r0 = (u - first_unit[m]) * R;
    rows(xq, ws[m], r0, std::min(ws[m].rows, r0 + R), ys[m]);
  });
}

// Panels of rows dequantized, multiplied by the dispatching matmul (so the
// GEMM path and its precision rules are the ones the stored dtypes get), and
// their outputs scattered into y. To bf16 when the GEMM would round x to bf16
// anyway: a dequantized weight d * q then loses bits past bf16's 8 (an extra
// relative error <= 2^-9 per weight), in exchange for the bf16 dot products.
// Panels are whole row groups (multiples of 64 rows, or all of w).
void gemm(const float* x, int64_t n, const MatrixView& w, float* y) {
  const MatrixView probe{nullptr, DType::BF16, w.rows, w.cols};
  const DType panel_dtype = matmul_rounds_x_to_bf16(probe, n) ? DType::BF16 : DType::F32;
  const int64_t panel = std::min(w.rows, std::max<int64_t>(64, ((int64_t(4) << 20) / (w.cols * 4)) & ~int64_t(63)));
  thread_local std::vector<float> wbuf, ybuf;
  wbuf.resize(size_t(panel * w.cols));
  ybuf.resize(size_t(panel * n));
  for (int64_t p0 = 0; p0 < w.rows; p0 += panel) {
    const int64_t p1 = std::min(w.rows, p0 + panel), pr = p1 - p0;
    float* wf = wbuf.data();
    auto* wh = reinterpret_cast<uint16_t*>(wbuf.data());
    parallel_for(pr, [&](int64_t a, int64_t b) {
      if (panel_dtype == DType::F32) dequantize_q8_0_rows(w, p0 + a, p0 + b, wf + a * w.cols, w.cols, false);
      else dequantize_q8_0_rows(w, p0 + a, p0 + b, wh + a * w.cols, w.cols, true);
    }, true, kQ8Rows);
    matmul(x, n, MatrixView{wbuf.data(), panel_dtype, pr, w.cols}, ybuf.data());
    for (int64_t t = 0; t < n; ++t) std::copy_n(ybuf.data() + t * pr, pr, y + t * w.rows + p0);
  }
}

}  // namespace mnemo::kernels::cpu::q8
