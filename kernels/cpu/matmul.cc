#include "kernels/cpu/matmul.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

namespace mnemo::kernels::cpu {
namespace {

inline float load(const MatrixView& w, int64_t i) {
  switch (w.dtype) {
    case DType::F32: return static_cast<const float*>(w.data)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(w.data)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(w.data)[i]);
  }
  return 0;
}

void rows_to_f32(const MatrixView& w, int64_t r0, int64_t r1, float* out) {
  for (int64_t r = r0; r < r1; ++r) row_to_f32(w, r, out + (r - r0) * w.cols);
}

}  // namespace

void row_to_f32(const MatrixView& w, int64_t r, float* out) {
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
  if (n == 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < w.rows; ++r) {
      float acc = 0;
      const int64_t base = r * w.cols;
      for (int64_t c = 0; c < w.cols; ++c) acc += x[c] * load(w, base + c);
      y[r] = acc;
    }
    return;
  }
  if (w.dtype == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(w.rows), int(w.cols), 1.0f, x,
                int(w.cols), static_cast<const float*>(w.data), int(w.cols), 0.0f, y, int(w.rows));
    return;
  }
  // Convert a panel of weight rows to f32, then one sgemm per panel.
  const int64_t panel = std::max<int64_t>(1, std::min<int64_t>(w.rows, (1 << 20) / std::max<int64_t>(1, w.cols)));
  std::vector<float> buf(size_t(panel * w.cols));
  for (int64_t r0 = 0; r0 < w.rows; r0 += panel) {
    const int64_t r1 = std::min(w.rows, r0 + panel);
    rows_to_f32(w, r0, r1, buf.data());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(r1 - r0), int(w.cols), 1.0f, x,
                int(w.cols), buf.data(), int(w.cols), 0.0f, y + r0, int(w.rows));
  }
}

}  // namespace mnemo::kernels::cpu
