#pragma once
// Element types of weights (as stored on disk, or quantized at load), and
// scalar conversions to f32.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace mnemo::kernels {

// Q8_0 is llama.cpp's 8-bit scheme: per 32 consecutive values of a row, an
// f16 scale and 32 int8 (BlockQ8_0). Never stored on disk (quantized at
// load); in memory a Q8_0 matrix is interleaved in groups of kQ8Rows rows
// for the decode GEMV (the layout: kernels/cpu/quantize.h), so its rows are
// not separately addressable: size it with matrix_bytes.
enum class DType : uint8_t { F32, F16, BF16, Q8_0 };

inline constexpr int64_t kQ8Block = 32;

// d = max|x| / 127 over the block (as f16 bits), q = round(x / d): x ~ d * q.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQ8Block];
};
static_assert(sizeof(BlockQ8_0) == 34, "llama.cpp's block_q8_0 layout: no padding");

// The in-memory Q8_0 matrix: groups of kQ8Rows rows (the last padded with
// zero rows), each a run of kQ8PairBytes units holding two blocks of every
// row of the group (a row's odd last block padded with a zero block).
inline constexpr int64_t kQ8Rows = 16;
inline constexpr size_t kQ8PairBytes = 2 * kQ8Rows * (2 + kQ8Block);  // 1088: 17 lines of 64 bytes
constexpr size_t q8_group_bytes(int64_t cols) { return size_t((cols / kQ8Block + 1) / 2) * kQ8PairBytes; }

// Bytes per element of the element-wise dtypes (F32, F16, BF16: what
// safetensors holds). Q8_0 has no per-element size: use row_bytes.
constexpr size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

// Bytes of one row of `cols` values; for Q8_0 cols must be a multiple of
// kQ8Block, and this is what a row costs (34 bytes per block), not a stride.
constexpr size_t row_bytes(DType t, int64_t cols) {
  return t == DType::Q8_0 ? size_t(cols / kQ8Block) * sizeof(BlockQ8_0) : size_t(cols) * dtype_size(t);
}

// Bytes of a [rows, cols] matrix as held in memory (Q8_0 with its padding).
constexpr size_t matrix_bytes(DType t, int64_t rows, int64_t cols) {
  return t == DType::Q8_0 ? size_t((rows + kQ8Rows - 1) / kQ8Rows) * q8_group_bytes(cols)
                          : size_t(rows) * row_bytes(t, cols);
}

std::string_view dtype_name(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as PyTorch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace mnemo::kernels
