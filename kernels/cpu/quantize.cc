#include "kernels/cpu/quantize.h"

#include <cassert>
#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace mnemo::kernels::cpu {

void quantize_row_q8_0(const float* x, int64_t cols, BlockQ8_0* out) {
  assert(cols % kQ8Block == 0);
  for (int64_t b = 0; b < cols / kQ8Block; ++b) {
    const float* v = x + b * kQ8Block;
    float amax = 0;
    for (int64_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(v[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    for (int64_t i = 0; i < kQ8Block; ++i) out[b].qs[i] = int8_t(std::round(v[i] * id));
  }
}

void dequantize_row_q8_0(const BlockQ8_0* in, int64_t cols, float* out) {
  for (int64_t b = 0; b < cols / kQ8Block; ++b) {
    const float d = f16_to_f32(in[b].d);
    for (int64_t i = 0; i < kQ8Block; ++i) out[b * kQ8Block + i] = d * float(in[b].qs[i]);
  }
}

MatrixView quantize_q8_0(const MatrixView& w, void* dst) {
  assert(q8_0_fits(w) && w.dtype != DType::Q8_0);
  auto* base = static_cast<uint8_t*>(dst);
  const size_t rb = row_bytes(DType::Q8_0, w.cols);
  parallel_for(w.rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(size_t(w.cols));
    for (int64_t r = r0; r < r1; ++r) {
      row_to_f32(w, r, row.data());
      quantize_row_q8_0(row.data(), w.cols, reinterpret_cast<BlockQ8_0*>(base + size_t(r) * rb));
    }
  }, w.rows * w.cols >= (1 << 16));
  return MatrixView{dst, DType::Q8_0, w.rows, w.cols};
}

}  // namespace mnemo::kernels::cpu
