// Dispatch between the AVX-512 paths and a portable fallback, plus the
// reference and conversion helpers. The fallback keeps machines without
// AVX-512 (or builds without -march=native) correct, not fast.
#include "kernels/cpu/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <cassert>
#include <atomic>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemv_q8.h"
#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/quantize.h"

namespace mnemo::kernels::cpu {
namespace {

std::atomic<MatmulPrecision> g_precision{MatmulPrecision::Fast};

inline float load(const MatrixView& w, int64_t i) {
  switch (w.dtype) {
    case DType::F32: return static_cast<const float*>(w.data)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(w.data)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(w.data)[i]);
    case DType::Q8_0: {
      const auto* base = static_cast<const uint8_t*>(w.data);
      const int64_t r = i / w.cols, c = i % w.cols;
      uint16_t d;
      std::memcpy(&d, base + q8_scale_offset(w.cols, r, c / kQ8Block), 2);
      return f16_to_f32(d) * float(int8_t(base[q8_value_offset(w.cols, r, c)] ^ 0x80));
    }
  }
  return 0;
}

void portable_gemv(const float* x, int64_t n, const MatrixView& w, float* y) {
  parallel_for(w.rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(size_t(w.cols));
    for (int64_t r = r0; r < r1; ++r) {
      row_to_f32(w, r, row.data());
      for (int64_t t = 0; t < n; ++t) {
        float acc = 0;
        const float* xt = x + t * w.cols;
        for (int64_t c = 0; c < w.cols; ++c) acc += xt[c] * row[size_t(c)];
        y[t * w.rows + r] = acc;
      }
    }
  });
}

// Weight panels converted to f32, then OpenBLAS (its own thread pool).
void portable_gemm(const float* x, int64_t n, const MatrixView& w, float* y) {
  if (w.dtype == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(w.rows), int(w.cols), 1.0f, x,
                int(w.cols), static_cast<const float*>(w.data), int(w.cols), 0.0f, y, int(w.rows));
    return;
  }
  const int64_t panel = std::max<int64_t>(1, std::min<int64_t>(w.rows, (1 << 20) / std::max<int64_t>(1, w.cols)));
  std::vector<float> buf(size_t(panel * w.cols));
  for (int64_t r0 = 0; r0 < w.rows; r0 += panel) {
    const int64_t r1 = std::min(w.rows, r0 + panel);
    for (int64_t r = r0; r < r1; ++r) row_to_f32(w, r, buf.data() + (r - r0) * w.cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(r1 - r0), int(w.cols), 1.0f, x,
                int(w.cols), buf.data(), int(w.cols), 0.0f, y + r0, int(w.rows));
  }
}

}  // namespace

void set_matmul_precision(MatmulPrecision p) { g_precision.store(p); }
MatmulPrecision matmul_precision() { return g_precision.load(); }

bool matmul_rounds_x_to_bf16(const MatrixView& w, int64_t n) {
  return n > kGemvMaxTokens && (w.dtype == DType::BF16 || w.dtype == DType::Q8_0) && matmul_precision() == MatmulPrecision::Fast &&
         avx512::supported();
}

void row_to_f32(const MatrixView& w, int64_t r, float* out) {
  if (w.dtype == DType::Q8_0) {
    dequantize_q8_0_row(w, r, out);
    return;
  }
  const int64_t base = r * w.cols;
  for (int64_t c = 0; c < w.cols; ++c) out[c] = load(w, base + c);
}

void matmul_reference(const float* x, int64_t n, const MatrixView& w, float* y) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < w.rows; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < w.cols; ++c) acc += double(x[t * w.cols + c]) * load(w, r * w.cols + c);
      y[t * w.rows + r] = float(acc);
    }
}

void matmul(const float* x, int64_t n, const MatrixView& w, float* y) {
  if (n <= 0 || w.rows <= 0) return;
  if (w.cols <= 0) {
    std::fill(y, y + n * w.rows, 0.0f);
    return;
  }
  if (w.dtype == DType::Q8_0) {
    if (n <= kGemvMaxTokens) q8::gemv(x, n, w, y);
    else q8::gemm(x, n, w, y);
    return;
  }
  if (!avx512::supported()) {
    if (n <= kGemvMaxTokens) portable_gemv(x, n, w, y);
    else portable_gemm(x, n, w, y);
    return;
  }
  if (n <= kGemvMaxTokens) avx512::gemv(x, n, w, y);
  else if (matmul_rounds_x_to_bf16(w, n)) avx512::gemm_bf16(x, n, w, y);
  else avx512::gemm_f32(x, n, w, y);
}

void matmul_many(const float* x, int64_t n, std::span<const MatrixView> ws, std::span<float* const> ys) {
  assert(ws.size() == ys.size());
  bool q8 = !ws.empty() && n > 0 && n <= kGemvMaxTokens;
  for (const MatrixView& w : ws) q8 = q8 && w.dtype == DType::Q8_0 && w.cols == ws[0].cols && w.rows > 0;
  if (q8) {
    q8::gemv_many(x, n, ws, ys);
    return;
  }
  bool fuse = !ws.empty() && n > 0 && n <= kGemvMaxTokens && avx512::supported();
  for (const MatrixView& w : ws)
    fuse = fuse && w.dtype == ws[0].dtype && w.cols == ws[0].cols && w.cols > 0 && w.rows > 0;
  if (!fuse) {
    for (size_t i = 0; i < ws.size(); ++i) matmul(x, n, ws[i], ys[i]);
    return;
  }
  avx512::gemv_many(x, n, ws, ys);
}

}  // namespace mnemo::kernels::cpu
