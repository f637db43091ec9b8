#pragma once
// Q8_0 quantization (llama.cpp's scheme): per block of 32 consecutive values
// along a row, d = max|x| / 127 stored as f16 and q = round(x / d) (ties away
// from zero) as int8, computed with the unrounded d as llama.cpp's
// quantize_row_q8_0_ref does. A value then carries an error of at most
// d_f32/2 from rounding q, plus |q| * |d_f16 - d_f32| <= 127 * 2^-11 * d from
// storing d in f16.
#include <cstdint>

#include "kernels/cpu/matmul.h"

namespace mnemo::kernels::cpu {

// Can w be quantized to Q8_0 (rows are whole blocks)?
inline bool q8_0_fits(const MatrixView& w) { return w.cols > 0 && w.cols % kQ8Block == 0; }

// One row of cols (a multiple of 32) f32 values into cols / 32 blocks.
void quantize_row_q8_0(const float* x, int64_t cols, BlockQ8_0* out);

// One block of 32 f32 values with an f32 scale (how x is quantized for the
// integer GEMV): q[i] = round(x[i] / d), d = max|x| / 127, returned. AVX-512
// when the CPU has it; the same bits either way.
float quantize_block_q8(const float* x, int8_t* q);

// Blocks back to f32: out[c] = f16(d) * q.
void dequantize_row_q8_0(const BlockQ8_0* in, int64_t cols, float* out);

// w (F32, F16 or BF16, q8_0_fits) into dst, which holds w.rows *
// row_bytes(Q8_0, w.cols) bytes; rows are split across the kernel threads.
// Returns the Q8_0 view of dst.
MatrixView quantize_q8_0(const MatrixView& w, void* dst);

}  // namespace mnemo::kernels::cpu
