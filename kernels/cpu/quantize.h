#pragma once
// Q8_0 quantization (llama.cpp's scheme): per block of 32 consecutive values
// along a row, d = max|x| / 127 stored as f16 and q = round(x / d) (ties away
// from zero) as int8, computed with the unrounded d as llama.cpp's
// quantize_row_q8_0_ref does. A value then carries an error of at most
// d_f32/2 from rounding q, plus |q| * |d_f16 - d_f32| <= 127 * 2^-11 * d from
// storing d in f16.
//
// In memory (every Q8_0 MatrixView) the blocks are interleaved for the
// decode GEMV: rows in groups of kQ8Rows = 16, a group is a run of
// kQ8PairBytes units, unit p holding blocks 2p and 2p+1 of the 16 rows:
//   [0, 32)     the rows' f16 scales of block 2p (row j at 2j),
//   [32, 64)    the same for block 2p+1,
//   [64, 576)   block 2p as 8 lines of 64 bytes: line k holds values
//               4k..4k+3 of rows 0..15 (row j at 4j),
//   [576, 1088) block 2p+1 likewise,
// each q stored as q ^ 0x80, i.e. q + 128 as uint8. Why: one VNNI vpdpbusd
// multiplies a whole line (unsigned) by 4 values of x broadcast (signed)
// into the 16 rows' sums at once, so a group is one sequential stream of
// aligned lines with no per-row reduction and its scales apply as one
// vector; the +128 comes back out as 128 * sum(x's block), once per token
// and block. Still 34 bytes per block, as llama.cpp's rows.
#include <cstdint>

#include "kernels/cpu/matmul.h"

namespace mnemo::kernels::cpu {

// Where (row r, block b)'s scale and (row r, column c)'s stored byte sit
// in a Q8_0 matrix of `cols` columns.
inline size_t q8_unit_offset(int64_t cols, int64_t r, int64_t b) {
  return size_t(r / kQ8Rows) * q8_group_bytes(cols) + size_t(b / 2) * kQ8PairBytes;
}
inline size_t q8_scale_offset(int64_t cols, int64_t r, int64_t b) {
  return q8_unit_offset(cols, r, b) + size_t(b % 2) * 2 * kQ8Rows + size_t(r % kQ8Rows) * 2;
}
inline size_t q8_value_offset(int64_t cols, int64_t r, int64_t c) {
  const int64_t b = c / kQ8Block, i = c % kQ8Block;
  return q8_unit_offset(cols, r, b) + 4 * kQ8Rows + size_t(b % 2) * kQ8Rows * kQ8Block + size_t(i / 4) * 64 +
         size_t(r % kQ8Rows) * 4 + size_t(i % 4);
}

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

// w (F32, F16 or BF16, q8_0_fits) into dst, which holds
// matrix_bytes(Q8_0, w.rows, w.cols) bytes; row groups are split across
// the kernel threads. Returns the Q8_0 view of dst.
MatrixView quantize_q8_0(const MatrixView& w, void* dst);

// rows x cols / 32 blocks in llama.cpp's row-major order into the layout
// above in dst (matrix_bytes(Q8_0, rows, cols) bytes); returns its view.
MatrixView pack_q8_0(const BlockQ8_0* blocks, int64_t rows, int64_t cols, void* dst);

// Row r of a Q8_0 matrix back as llama.cpp's w.cols / 32 blocks.
void unpack_q8_0_row(const MatrixView& w, int64_t r, BlockQ8_0* out);

// Row r of a Q8_0 matrix to f32: out[c] = f16(d) * q (the embedding lookup).
void dequantize_q8_0_row(const MatrixView& w, int64_t r, float* out);

// Rows [r0, r1) of a Q8_0 matrix to f32 (out[(r - r0) * ld + c]) or, with
// bf16 set, to bf16 bits (rounded to nearest even) in a uint16_t array of
// the same shape; r0 a multiple of kQ8Rows. A group at a time: the GEMM's
// weight panels.
void dequantize_q8_0_rows(const MatrixView& w, int64_t r0, int64_t r1, void* out, int64_t ld, bool bf16);

}  // namespace mnemo::kernels::cpu
