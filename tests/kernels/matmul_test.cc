// matmul against the double-accumulating reference, for every dtype, odd
// shapes (tails of the 16/32-wide vector loops, rows = 1), small n (decode
// GEMV path) and larger n (GEMM path), with 1 and 2 threads.
//
// Tolerance, per output element: |y - ref| <= tol * sum_i |x_i * w_i|.
// The reference sums exactly the same (exactly representable) products, so
// only summation rounding differs. f32 accumulation split over >= 16 partial
// sums of at most K terms each stays far below 1e-5 * sum|x w| in practice
// (a random walk of K roundings of size 2^-24 is ~4.5e-6 at K = 5632, the
// worst case we use); a wrong index or tail is an O(1) error. When the fast
// BF16 GEMM rounds x to bf16 (8 significant bits: |dx| <= 2^-8 |x|), the
// bound gains 2^-8.
#include <gtest/gtest.h>
#include "kernels/cpu/parallel.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_avx512.h"

namespace mnemo::kernels::cpu {
namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  MatrixView view;
};

Weights random_weights(DType dt, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Weights w;
  w.bytes.resize(size_t(rows * cols) * dtype_size(dt));
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = nd(rng);
    if (dt == DType::F32) std::memcpy(w.bytes.data() + 4 * i, &v, 4);
    const uint16_t h = dt == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
    if (dt != DType::F32) std::memcpy(w.bytes.data() + 2 * i, &h, 2);
  }
  w.view = MatrixView{w.bytes.data(), dt, rows, cols};
  return w;
}

std::vector<float> random_vec(size_t count, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(count);
  for (auto& e : v) e = nd(rng);
  return v;
}

// sum_i |x_i w_i| per output, the scale of the rounding error of a dot product.
std::vector<double> abs_dot(const std::vector<float>& x, int64_t n, const MatrixView& w) {
  std::vector<float> row(size_t(w.cols));
  std::vector<double> out(size_t(n * w.rows));
  for (int64_t r = 0; r < w.rows; ++r) {
    row_to_f32(w, r, row.data());
    for (int64_t t = 0; t < n; ++t) {
      double s = 0;
      for (int64_t c = 0; c < w.cols; ++c) s += std::fabs(double(x[size_t(t * w.cols + c)]) * row[size_t(c)]);
      out[size_t(t * w.rows + r)] = s;
    }
  }
  return out;
}

void check(DType dt, int64_t rows, int64_t cols, int64_t n, int threads, uint32_t seed = 1) {
  std::mt19937 rng(seed + uint32_t(rows * 7919 + cols * 31 + n));
  Weights w = random_weights(dt, rows, cols, rng);
  std::vector<float> x = random_vec(size_t(n * cols), rng);
  std::vector<float> y(size_t(n * rows), NAN), ref(size_t(n * rows));
  set_num_threads(threads);
  matmul(x.data(), n, w.view, y.data());
  matmul_reference(x.data(), n, w.view, ref.data());
  const std::vector<double> scale = abs_dot(x, n, w.view);
  const double tol = 1e-5 + (matmul_rounds_x_to_bf16(w.view, n) ? 1.0 / 256 : 0.0);
  int bad = 0;
  for (size_t i = 0; i < y.size() && bad < 5; ++i) {
    const double err = std::fabs(double(y[i]) - ref[i]);
    if (!(err <= tol * scale[i] + 1e-30)) {
      ++bad;
      ADD_FAILURE() << dtype_name(dt) << " rows=" << rows << " cols=" << cols << " n=" << n
                    << " threads=" << threads << " at token " << i / size_t(rows) << " row "
                    << i % size_t(rows) << ": got " << y[i] << " want " << ref[i] << " (err "
                    << err << ", allowed " << tol * scale[i] << ")";
    }
  }
}

class MatmulTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulTest, DecodeOddShapes) {
  for (int64_t rows : {1, 3, 17, 64, 300})  // 300: whole 128-row panels and a remainder
    for (int64_t cols : {1, 7, 16, 31, 32, 33, 100, 257})
      for (int threads : {1, 2}) check(GetParam(), rows, cols, 1, threads);
}

TEST_P(MatmulTest, SmallBatchEveryN) {
  for (int64_t n = 1; n <= 17; ++n)
    for (int threads : {1, 2}) check(GetParam(), 37, 75, n, threads);
}

TEST_P(MatmulTest, GemmOddShapes) {
  for (int64_t n : {18, 31, 64, 129})
    for (int64_t rows : {1, 5, 33, 100})
      for (int64_t cols : {1, 17, 63, 300})
        for (int threads : {1, 2}) check(GetParam(), rows, cols, n, threads);
}

TEST_P(MatmulTest, LargeShapes) {
  for (int threads : {1, 2}) {
    check(GetParam(), 1000, 2048, 1, threads);
    check(GetParam(), 97, 5632, 1, threads);
    check(GetParam(), 130, 1100, 150, threads);
    check(GetParam(), 70, 2050, 37, threads);
  }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, MatmulTest, ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(MatmulTest, ExactModeKeepsBf16GemmInF32) {
  set_matmul_precision(MatmulPrecision::Exact);
  std::mt19937 rng(3);
  Weights w = random_weights(DType::BF16, 40, 300, rng);
  EXPECT_FALSE(matmul_rounds_x_to_bf16(w.view, 200));
  check(DType::BF16, 40, 300, 200, 2);
  set_matmul_precision(MatmulPrecision::Fast);
}

TEST(MatmulTest, PortableFallback) {
  avx512::force_portable(true);
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    for (int64_t n : {1, 3, 40}) check(dt, 33, 70, n, 2);
  avx512::force_portable(false);
}

// Matrices sharing x in one parallel region give what separate calls give,
// bit for bit, whatever the split of rows across threads; mixed dtypes or
// GEMM-sized n fall back to separate calls.
TEST(MatmulTest, ManyEqualsSeparateCalls) {
  std::mt19937 rng(11);
  for (DType dt : {DType::BF16, DType::F16, DType::F32})
    for (int64_t n : {1, 3, 16, 40})
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        Weights a = random_weights(dt, 37, 70, rng), b = random_weights(dt, 64, 70, rng), c = random_weights(dt, 5, 70, rng);
        const std::vector<float> x = random_vec(size_t(n * 70), rng);
        const MatrixView ws[] = {a.view, b.view, c.view};
        std::vector<float> ya(size_t(n * 37)), yb(size_t(n * 64)), yc(size_t(n * 5));
        float* const ys[] = {ya.data(), yb.data(), yc.data()};
        matmul_many(x.data(), n, ws, ys);
        for (size_t m = 0; m < 3; ++m) {
          std::vector<float> alone(size_t(n * ws[m].rows));
          matmul(x.data(), n, ws[m], alone.data());
          for (size_t i = 0; i < alone.size(); ++i)
            ASSERT_EQ(ys[m][i], alone[i]) << dtype_name(dt) << " n=" << n << " threads=" << threads << " matrix " << m;
        }
      }
  std::mt19937 rng2(12);
  Weights f = random_weights(DType::F32, 8, 32, rng2), h = random_weights(DType::BF16, 8, 32, rng2);
  const std::vector<float> x = random_vec(32, rng2);
  const MatrixView mixed[] = {f.view, h.view};
  std::vector<float> y0(8), y1(8), r0(8), r1(8);
  float* const ys[] = {y0.data(), y1.data()};
  matmul_many(x.data(), 1, mixed, ys);
  matmul(x.data(), 1, f.view, r0.data());
  matmul(x.data(), 1, h.view, r1.data());
  EXPECT_EQ(y0, r0);
  EXPECT_EQ(y1, r1);
}

TEST(MatmulTest, RowToF32MatchesConversion) {
  std::mt19937 rng(5);
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    Weights w = random_weights(dt, 3, 41, rng);
    std::vector<float> row(41);
    row_to_f32(w.view, 2, row.data());
    for (int64_t c = 0; c < 41; ++c) {
      const uint8_t* p = w.bytes.data() + size_t(2 * 41 + c) * dtype_size(dt);
      uint16_t h;
      std::memcpy(&h, p, 2);
      float want;
      if (dt == DType::F32) std::memcpy(&want, p, 4);
      else want = dt == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      EXPECT_EQ(row[size_t(c)], want);
    }
  }
}

}  // namespace
}  // namespace mnemo::kernels::cpu
