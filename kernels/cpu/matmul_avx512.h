#pragma once
// AVX-512 matmul paths, internal to matmul.cc. Each call uses the kernel
// threads in force and splits the output rows (w.rows) between them, so every
// weight byte is read by exactly one thread, once.
#include <cstdint>
#include <span>

#include "kernels/cpu/matmul.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512BF16__)
#define MNEMO_AVX512 1
#else
#define MNEMO_AVX512 0
#endif

namespace mnemo::kernels::cpu::avx512 {

// True when this CPU runs avx512f/bw/vl and avx512_bf16 (checked once) and
// the portable path is not forced.
bool supported();

// Tests force the portable fallback to check it on AVX-512 machines.
void force_portable(bool on);

// n <= kGemvMaxTokens: streams w once, converting to f32 in registers.
void gemv(const float* x, int64_t n, const MatrixView& w, float* y);

// ys[i] = x . ws[i]^T; all ws share cols and dtype.
void gemv_many(const float* x, int64_t n, std::span<const MatrixView> ws, std::span<float* const> ys);

// Blocked GEMM, f32 FMA on weights converted to f32 while packing.
void gemm_f32(const float* x, int64_t n, const MatrixView& w, float* y);

// Blocked GEMM for BF16 weights with x rounded to bf16 (vdpbf16ps).
void gemm_bf16(const float* x, int64_t n, const MatrixView& w, float* y);

}  // namespace mnemo::kernels::cpu::avx512
