#pragma once
// Matmul with Q8_0 weights, internal to matmul.cc (and tests). Decode
// (n <= kGemvMaxTokens) quantizes x per 32-block to int8 with its own f32
// scale, as llama.cpp does for q8_0 x q8_0, and takes integer dot products
// per block (AVX-512 VNNI when the CPU has it, scalar otherwise); prefill
// dequantizes weight panels and reuses the GEMM.
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace mnemo::kernels::cpu::q8 {

// x[n, cols] quantized per token and 32-block: qs[t * ld + c], d[t * ld / 32 + b],
// ld a multiple of 64 with zero padding (so a pair of blocks is one 64-byte
// load, and a Q8_0 unit's padding block meets zeros). bias[t * ld / 32 + b]
// = -128 * sum of the block's qs: what takes the weights' +128 back out of
// an unsigned-by-signed block sum.
struct QuantizedX {
  std::vector<int8_t> qs_buf;
  std::vector<float> d_buf;
  std::vector<int32_t> bias_buf;
  int8_t* qs = nullptr;  // 64-byte aligned
  float* d = nullptr;
  int32_t* bias = nullptr;
  int64_t ld = 0;
  int64_t n = 0;
};
void quantize_x(const float* x, int64_t n, int64_t cols, QuantizedX& out);

// y[n, w.rows] = x . w^T, n <= kGemvMaxTokens, w.dtype == Q8_0.
void gemv(const float* x, int64_t n, const MatrixView& w, float* y);
// ys[i] = x . ws[i]^T; all ws Q8_0 with the same cols; one parallel region.
void gemv_many(const float* x, int64_t n, std::span<const MatrixView> ws, std::span<float* const> ys);
// Any n: weight panels dequantized (to bf16 under MatmulPrecision::Fast with
// AVX-512, else f32) and multiplied by the GEMM paths.
void gemm(const float* x, int64_t n, const MatrixView& w, float* y);

// The portable integer kernel for rows [r0, r1), r0 a multiple of kQ8Rows
// (also what the VNNI one is checked against). Forced on VNNI machines by
// cpu::avx512::force_portable.
void gemv_rows_portable(const QuantizedX& xq, const MatrixView& w, int64_t r0, int64_t r1, float* y);

namespace avx512 {
// AVX-512 VNNI on this CPU (and in this build), and not forced portable.
bool vnni_supported();
// rows [r0, r1) of w for every token of xq, r0 a multiple of kQ8Rows.
void gemv_rows(const QuantizedX& xq, const MatrixView& w, int64_t r0, int64_t r1, float* y);
}  // namespace avx512

}  // namespace mnemo::kernels::cpu::q8
