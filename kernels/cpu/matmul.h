#pragma once
// Linear layers: y = x . W^T with W stored row-major as [out, in] in its
// on-disk dtype (the Hugging Face nn.Linear layout), x and y in f32.
#include <cstdint>

#include "kernels/dtype.h"

namespace mnemo::kernels {

struct MatrixView {
  const void* data = nullptr;  // [rows, cols] row-major, dtype elements
  DType dtype = DType::F32;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features
};

namespace cpu {

// y[n, w.rows] = x[n, w.cols] . w^T. Uses the OpenMP thread count in force.
// n == 1 is the memory-bound decode path (GEMV); larger n goes through GEMM.
void matmul(const float* x, int64_t n, const MatrixView& w, float* y);

// Reference implementation: plain loops, double accumulation. For tests.
void matmul_reference(const float* x, int64_t n, const MatrixView& w, float* y);

// Copies row r of w into out[w.cols] as f32 (embedding lookup).
void row_to_f32(const MatrixView& w, int64_t r, float* out);

}  // namespace cpu
}  // namespace mnemo::kernels
