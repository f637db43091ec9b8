#pragma once
// Linear layers: y = x . W^T with W stored row-major as [out, in] in its
// on-disk dtype (the Hugging Face nn.Linear layout), x and y in f32.
#include <cstdint>
#include <span>

#include "kernels/dtype.h"

namespace mnemo::kernels {

struct MatrixView {
  const void* data = nullptr;  // [rows, cols] row-major, dtype elements (Q8_0: interleaved row groups, quantize.h)
  DType dtype = DType::F32;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features
};

namespace cpu {

// y[n, w.rows] = x[n, w.cols] . w^T. Uses the calling thread's
// kernel thread count (parallel.h).
// n == 1 is the memory-bound decode path (GEMV); larger n goes through GEMM.
void matmul(const float* x, int64_t n, const MatrixView& w, float* y);

// ys[i][n, ws[i].rows] = x . ws[i]^T for matrices that read the same x (a
// layer's q/k/v, gate/up): in decode they share one parallel region.
void matmul_many(const float* x, int64_t n, std::span<const MatrixView> ws, std::span<float* const> ys);

// Reference implementation: plain loops, double accumulation. For tests.
void matmul_reference(const float* x, int64_t n, const MatrixView& w, float* y);

// Copies row r of w into out[w.cols] as f32 (embedding lookup).
void row_to_f32(const MatrixView& w, int64_t r, float* out);

// Fast (the default) lets the GEMM path (n > kGemvMaxTokens) with BF16
// weights round x to bf16 and use the bf16 dot-product instructions, twice
// the f32 FMA rate: each output then carries an extra error of at most
// 2^-8 * sum_i |x_i w_i| (bf16 keeps 8 significant bits), as in llama.cpp
// and PyTorch's bf16 matmul. Exact keeps every path in f32 arithmetic.
// Process-wide; set it before serving.
enum class MatmulPrecision { Exact, Fast };
void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();

// True when matmul(x, n, w, y) would round x to bf16 under the current precision.
bool matmul_rounds_x_to_bf16(const MatrixView& w, int64_t n);

// Up to this many tokens the weights are streamed once in a GEMV-style
// kernel (decode, batched decode); above it, the blocked GEMM runs.
inline constexpr int64_t kGemvMaxTokens = 16;

}  // namespace cpu
}  // namespace mnemo::kernels
