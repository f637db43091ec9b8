// Q8_0: quantization (against the numpy golden of tests/reference/q8_reference.py,
// bit for bit), the integer GEMV (VNNI and portable) against a float64 product
// of the same quantized operands, the error against the unquantized product
// within the bound the quantization steps allow, and the prefill path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "kernels/cpu/gemv_q8.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/quantize.h"

namespace mnemo::kernels::cpu {
namespace {

struct Q8Matrix {
  std::vector<float> f32;  // the unquantized values
  std::vector<uint8_t> bytes;
  MatrixView view;
};

Q8Matrix make(int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Q8Matrix m;
  m.f32.resize(size_t(rows * cols));
  for (auto& v : m.f32) v = nd(rng);
  m.bytes.resize(matrix_bytes(DType::Q8_0, rows, cols));
  m.view = quantize_q8_0(MatrixView{m.f32.data(), DType::F32, rows, cols}, m.bytes.data());
  return m;
}

std::vector<float> random_vec(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& e : v) e = nd(rng);
  return v;
}

// x as the kernel sees it: quantized per 32-block, dequantized in double.
std::vector<double> dequantized_x(const std::vector<float>& x, int64_t n, int64_t cols) {
  q8::QuantizedX xq;
  q8::quantize_x(x.data(), n, cols, xq);
  std::vector<double> out(size_t(n * cols));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < cols; ++c)
      out[size_t(t * cols + c)] = double(xq.d[t * xq.ld / kQ8Block + c / kQ8Block]) * xq.qs[t * xq.ld + c];
  return out;
}

// ref[t, r] = xd[t] . dequant(w)[r] in double; abs[t, r] = the same over |terms|.
void reference(const std::vector<double>& xd, int64_t n, const MatrixView& w, std::vector<double>& ref,
               std::vector<double>& abs) {
  ref.assign(size_t(n * w.rows), 0.0);
  abs.assign(size_t(n * w.rows), 0.0);
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    row_to_f32(w, r, row.data());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < w.cols; ++c) {
        const double p = xd[size_t(t * w.cols + c)] * row[size_t(c)];
        ref[size_t(t * w.rows + r)] += p;
        abs[size_t(t * w.rows + r)] += std::fabs(p);
      }
  }
}

// The integer block sums are exact in both kernels; what differs from the
// double reference is f32 rounding of the per-block scale products and of
// the accumulation (<= nb + 2 roundings of 2^-24 relative), far below 1e-5.
constexpr double kTight = 1e-5;

void check_gemv(int64_t rows, int64_t cols, int64_t n, int threads, std::mt19937& rng) {
  const Q8Matrix w = make(rows, cols, rng);
  const std::vector<float> x = random_vec(size_t(n * cols), rng);
  std::vector<double> ref, abs;
  reference(dequantized_x(x, n, cols), n, w.view, ref, abs);
  set_num_threads(threads);
  for (bool portable : {false, true}) {
    avx512::force_portable(portable);
    // A canary past the end: the last row group is padded to 16 rows, and
    // its padding rows must not be stored.
    std::vector<float> y(size_t(n * rows) + kQ8Rows, 12345.0f);
    std::fill_n(y.begin(), n * rows, NAN);
    matmul(x.data(), n, w.view, y.data());
    for (size_t i = 0; i < size_t(n * rows); ++i)
      ASSERT_LE(std::fabs(y[i] - ref[i]), kTight * abs[i] + 1e-30)
          << "rows " << rows << " cols " << cols << " n " << n << " threads " << threads << " portable " << portable
          << " at " << i;
    for (size_t i = size_t(n * rows); i < y.size(); ++i) ASSERT_EQ(y[i], 12345.0f) << "wrote past y at " << i;
  }
  avx512::force_portable(false);
}

TEST(Q8Gemv, MatchesDoubleProductOfQuantizedOperands) {
  std::mt19937 rng(16);
  for (int threads : {1, 2})
    for (int64_t rows : {1, 7, 16, 37, 64})  // partial and whole 16-row groups
      for (int64_t cols : {32, 96, 256, 2080})  // 1, 3 (odd: the pair tail), 8, 65 blocks
        for (int64_t n : {1, 2, 3, 5, 16}) check_gemv(rows, cols, n, threads, rng);  // 4-token passes and tails
}

TEST(Q8Gemv, VnniKernelIsTheOneRunningHere) {
  // On this project's build machines (AVX-512 VNNI) the fast path must be
  // live, or the test above only checked the fallback twice.
  if (!__builtin_cpu_supports("avx512vnni") || !avx512::supported()) GTEST_SKIP() << "no AVX-512 VNNI";
  EXPECT_TRUE(q8::avx512::vnni_supported());
  avx512::force_portable(true);
  EXPECT_FALSE(q8::avx512::vnni_supported());
  avx512::force_portable(false);
}

TEST(Q8Gemv, ManyMatchesOneByOne) {
  std::mt19937 rng(3);
  const int64_t cols = 320;
  std::vector<Q8Matrix> ms;
  for (int64_t rows : {64, 16, 16, 9}) ms.push_back(make(rows, cols, rng));
  for (int64_t n : {1, 3}) {
    const std::vector<float> x = random_vec(size_t(n * cols), rng);
    std::vector<MatrixView> ws;
    std::vector<std::vector<float>> ys, one;
    std::vector<float*> yp;
    for (auto& m : ms) {
      ws.push_back(m.view);
      ys.emplace_back(size_t(n * m.view.rows), NAN);
      one.emplace_back(size_t(n * m.view.rows), NAN);
    }
    for (auto& y : ys) yp.push_back(y.data());
    set_num_threads(2);
    matmul_many(x.data(), n, ws, yp);
    for (size_t i = 0; i < ms.size(); ++i) {
      matmul(x.data(), n, ws[i], one[i].data());
      EXPECT_EQ(ys[i], one[i]) << "matrix " << i << " n " << n;  // same kernel, same sums
    }
  }
}

// Against the unquantized product. Per element, x_i = xq_i + ex_i and
// w_i = wq_i + ew_i with |ex_i| <= dx/2 (x's f32 scale: rounding q only) and
// |ew_i| <= dw/2 + 127 |f16(dw) - dw| <= dw (1/2 + 127 * 2^-11) (the f16
// scale moves every q*d of the block), so
//   |y - y_exact| <= sum_i |x_i| |ew_i| + |w_i| |ex_i| + |ex_i| |ew_i|,
// computed per output below (the kernel's own f32 rounding is negligible).
// A random walk makes the typical error ~sqrt(K) times smaller than this
// worst case; the test also checks the bound is not vacuous: the error is
// nonzero and reaches 1% of the bound somewhere.
TEST(Q8Gemv, ErrorAgainstUnquantizedWithinQuantizationBound) {
  std::mt19937 rng(5);
  const int64_t rows = 48, cols = 512, n = 2;
  const Q8Matrix w = make(rows, cols, rng);
  const std::vector<float> x = random_vec(size_t(n * cols), rng);
  std::vector<float> y(size_t(n * rows));
  set_num_threads(2);
  matmul(x.data(), n, w.view, y.data());
  double worst_ratio = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double exact = 0, bound = 0;
      for (int64_t b = 0; b < cols / kQ8Block; ++b) {
        double ax = 0, aw = 0;
        for (int64_t i = 0; i < kQ8Block; ++i) {
          ax = std::max(ax, std::fabs(double(x[size_t(t * cols + b * kQ8Block + i)])));
          aw = std::max(aw, std::fabs(double(w.f32[size_t(r * cols + b * kQ8Block + i)])));
        }
        const double ex = ax / 127 / 2, ew = aw / 127 * (0.5 + 127.0 / 2048);
        for (int64_t i = 0; i < kQ8Block; ++i) {
          const double xv = x[size_t(t * cols + b * kQ8Block + i)], wv = w.f32[size_t(r * cols + b * kQ8Block + i)];
          exact += xv * wv;
          bound += std::fabs(xv) * ew + std::fabs(wv) * ex + ex * ew;
        }
      }
      const double err = std::fabs(y[size_t(t * rows + r)] - exact);
      ASSERT_LE(err, bound * 1.0001) << "t " << t << " r " << r;
      worst_ratio = std::max(worst_ratio, err / bound);
    }
  EXPECT_GT(worst_ratio, 0.01);
}

// Prefill (n > kGemvMaxTokens): dequantized panels through the GEMM. Exact
// precision: f32 products of the dequantized weights and x, summation
// rounding only. Fast: x and the dequantized weights rounded to bf16 (2^-8
// and 2^-9 relative, as matmul.h states for BF16 weights, plus the weights).
TEST(Q8Gemm, PrefillMatchesDequantizedProduct) {
  std::mt19937 rng(7);
  const int64_t rows = 200, cols = 352, n = 40;
  const Q8Matrix w = make(rows, cols, rng);
  const std::vector<float> x = random_vec(size_t(n * cols), rng);
  std::vector<double> xd(x.begin(), x.end());
  std::vector<double> ref, abs;
  reference(xd, n, w.view, ref, abs);
  set_num_threads(2);
  for (MatmulPrecision p : {MatmulPrecision::Exact, MatmulPrecision::Fast}) {
    set_matmul_precision(p);
    const double tol = 1e-5 + (matmul_rounds_x_to_bf16(w.view, n) ? 1.0 / 256 + 1.0 / 512 : 0.0);
    std::vector<float> y(size_t(n * rows), NAN);
    matmul(x.data(), n, w.view, y.data());
    for (size_t i = 0; i < y.size(); ++i) ASSERT_LE(std::fabs(y[i] - ref[i]), tol * abs[i]) << i;
  }
  set_matmul_precision(MatmulPrecision::Fast);
}

TEST(Q8Gemm, ManyPanels) {
  std::mt19937 rng(8);
  const int64_t rows = 4096 + 70, cols = 2048, n = 17;  // panels of 512 rows, a short last one
  const Q8Matrix w = make(rows, cols, rng);
  const std::vector<float> x = random_vec(size_t(n * cols), rng);
  std::vector<double> ref, abs;
  reference(std::vector<double>(x.begin(), x.end()), n, w.view, ref, abs);
  set_matmul_precision(MatmulPrecision::Exact);
  std::vector<float> y(size_t(n * rows), NAN);
  matmul(x.data(), n, w.view, y.data());
  set_matmul_precision(MatmulPrecision::Fast);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_LE(std::fabs(y[i] - ref[i]), 1e-5 * abs[i]) << i;
}

TEST(Q8Quantize, RowToF32Dequantizes) {
  std::mt19937 rng(9);
  const Q8Matrix w = make(3, 64, rng);
  std::vector<float> row(64);
  row_to_f32(w.view, 2, row.data());
  BlockQ8_0 b[2];
  unpack_q8_0_row(w.view, 2, b);
  for (int c = 0; c < 64; ++c) EXPECT_EQ(row[size_t(c)], f16_to_f32(b[c / 32].d) * float(b[c / 32].qs[c % 32]));
  for (int c = 0; c < 64; ++c) EXPECT_NEAR(row[size_t(c)], w.f32[size_t(128 + c)], f16_to_f32(b[c / 32].d) * 0.57);
}

// The layout of quantize.h, with the offsets written out here rather than
// taken from q8_value_offset: 19 rows (a second, partial group) of 3 blocks
// (the second pair half is padding).
TEST(Q8Layout, BytesWhereQuantizeHSaysAndPaddingIsZero) {
  const int64_t rows = 19, cols = 96, nb = 3;
  std::vector<BlockQ8_0> blocks(size_t(rows * nb));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      blocks[size_t(r * nb + b)].d = uint16_t(0x3c00 + r * nb + b);
      for (int64_t i = 0; i < kQ8Block; ++i) blocks[size_t(r * nb + b)].qs[i] = int8_t((r * 31 + b * 7 + i * 13) % 255 - 127);
    }
  const size_t group = 2 * 1088;
  ASSERT_EQ(matrix_bytes(DType::Q8_0, rows, cols), 2 * group);
  std::vector<uint8_t> bytes(matrix_bytes(DType::Q8_0, rows, cols), 0x55);
  const MatrixView w = pack_q8_0(blocks.data(), rows, cols, bytes.data());
  for (int64_t r = 0; r < 32; ++r)
    for (int64_t b = 0; b < 4; ++b) {
      const size_t unit = size_t(r / 16) * group + size_t(b / 2) * 1088;
      uint16_t d;
      std::memcpy(&d, &bytes[unit + size_t(b % 2) * 32 + size_t(r % 16) * 2], 2);
      const bool real = r < rows && b < nb;
      EXPECT_EQ(d, real ? blocks[size_t(r * nb + b)].d : 0) << r << "," << b;
      for (int64_t i = 0; i < kQ8Block; ++i) {
        const uint8_t q = bytes[unit + 64 + size_t(b % 2) * 512 + size_t(i / 4) * 64 + size_t(r % 16) * 4 + size_t(i % 4)];
        ASSERT_EQ(int(int8_t(q ^ 0x80)), real ? int(blocks[size_t(r * nb + b)].qs[i]) : 0) << r << "," << b << "," << i;
      }
    }
  for (int64_t r = 0; r < rows; ++r) {
    BlockQ8_0 back[nb];
    unpack_q8_0_row(w, r, back);
    EXPECT_EQ(std::memcmp(back, blocks.data() + r * nb, sizeof(back)), 0) << r;
  }
}

// The GEMM's panels: rows [16, 37) (a whole group and a partial one) to f32
// and bf16 agree with row_to_f32, on the vector and the portable path.
TEST(Q8Layout, DequantizeRowsMatchesRowToF32) {
  std::mt19937 rng(12);
  const int64_t rows = 37, cols = 96, ld = cols + 5;
  const Q8Matrix w = make(rows, cols, rng);
  std::vector<float> row(static_cast<size_t>(cols));
  for (bool portable : {false, true}) {
    avx512::force_portable(portable);
    std::vector<float> f(size_t(21 * ld), NAN);
    std::vector<uint16_t> h(size_t(21 * ld), 0xffff);
    dequantize_q8_0_rows(w.view, 16, 37, f.data(), ld, false);
    dequantize_q8_0_rows(w.view, 16, 37, h.data(), ld, true);
    for (int64_t r = 16; r < 37; ++r) {
      row_to_f32(w.view, r, row.data());
      for (int64_t c = 0; c < cols; ++c) {
        ASSERT_EQ(f[size_t((r - 16) * ld + c)], row[size_t(c)]) << r << "," << c << " portable " << portable;
        ASSERT_EQ(h[size_t((r - 16) * ld + c)], f32_to_bf16(row[size_t(c)])) << r << "," << c << " portable " << portable;
      }
    }
  }
  avx512::force_portable(false);
}

TEST(Q8Quantize, SourcesOfEveryDtypeAgree) {
  // BF16 and F16 sources quantize as their f32 values would.
  std::vector<float> v = {0.5f, -1.25f, 3.0f, 0.0f};
  v.resize(32, 0.75f);
  std::vector<uint16_t> h(32), b(32);
  for (int i = 0; i < 32; ++i) h[size_t(i)] = f32_to_f16(v[size_t(i)]), b[size_t(i)] = f32_to_bf16(v[size_t(i)]);
  BlockQ8_0 want{}, got{};
  quantize_row_q8_0(v.data(), 32, &want);
  std::vector<uint8_t> bytes(matrix_bytes(DType::Q8_0, 1, 32));
  for (auto m : {MatrixView{h.data(), DType::F16, 1, 32}, MatrixView{b.data(), DType::BF16, 1, 32}}) {
    unpack_q8_0_row(quantize_q8_0(m, bytes.data()), 0, &got);
    EXPECT_EQ(got.d, want.d);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(got.qs[i], want.qs[i]) << i;
  }
}

TEST(Q8Quantize, VectorPathMatchesScalarBitForBit) {
  // quantize_q8_0 takes the AVX-512 path here; quantize_row_q8_0 is scalar.
  // Values on .5 ties (d = 1 when a block's max is 127) and random ones.
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  const int64_t rows = 9, cols = 128;
  std::vector<float> v(size_t(rows * cols));
  for (auto& e : v) e = nd(rng);
  for (int64_t c = 0; c < cols; ++c) v[size_t(c)] = c % 32 == 0 ? 127.0f : float(int(c % 64) - 32) + 0.5f;
  for (int64_t c = 0; c < 32; ++c) v[size_t(cols + c)] = 0.0f;  // an all-zero block
  for (bool portable : {false, true}) {
    avx512::force_portable(portable);
    std::vector<uint8_t> got(matrix_bytes(DType::Q8_0, rows, cols)), want(got.size());
    quantize_q8_0(MatrixView{v.data(), DType::F32, rows, cols}, got.data());
    std::vector<BlockQ8_0> blocks(size_t(rows * cols / kQ8Block));
    for (int64_t r = 0; r < rows; ++r) quantize_row_q8_0(v.data() + r * cols, cols, blocks.data() + r * cols / kQ8Block);
    pack_q8_0(blocks.data(), rows, cols, want.data());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size()), 0) << "portable " << portable;
  }
  avx512::force_portable(false);
}

// tests/golden/q8/gemv.json: quantization bit for bit, y within kTight.
TEST(Q8Golden, MatchesNumpyReference) {
  std::ifstream in(std::string(MNEMO_SOURCE_DIR) + "/tests/golden/q8/gemv.json");
  ASSERT_TRUE(in) << "tests/golden/q8/gemv.json missing";
  const nlohmann::json g = nlohmann::json::parse(in);
  const int64_t rows = g["rows"], cols = g["cols"], n = g["n"];
  const std::vector<float> w = g["w"].get<std::vector<float>>(), x = g["x"].get<std::vector<float>>();
  const auto w_d = g["w_d_f16_bits"].get<std::vector<int>>(), w_qs = g["w_qs"].get<std::vector<int>>();
  const auto x_d = g["x_d"].get<std::vector<float>>();
  const auto x_qs = g["x_qs"].get<std::vector<int>>();
  const auto y_q8 = g["y_q8"].get<std::vector<double>>(), y_f32 = g["y_f32"].get<std::vector<double>>();

  std::vector<uint8_t> bytes(matrix_bytes(DType::Q8_0, rows, cols));
  const MatrixView q = quantize_q8_0(MatrixView{w.data(), DType::F32, rows, cols}, bytes.data());
  std::vector<BlockQ8_0> blocks(size_t(rows * cols / kQ8Block));
  for (int64_t r = 0; r < rows; ++r) unpack_q8_0_row(q, r, blocks.data() + r * cols / kQ8Block);
  for (int64_t b = 0; b < rows * cols / kQ8Block; ++b) {
    ASSERT_EQ(blocks[b].d, w_d[size_t(b)]) << "block " << b;
    for (int64_t i = 0; i < kQ8Block; ++i) ASSERT_EQ(blocks[b].qs[i], w_qs[size_t(b * kQ8Block + i)]) << b << "," << i;
  }
  for (bool portable : {false, true}) {
    avx512::force_portable(portable);
    q8::QuantizedX xq;
    q8::quantize_x(x.data(), n, cols, xq);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < cols; ++c) {
        ASSERT_EQ(xq.qs[t * xq.ld + c], x_qs[size_t(t * cols + c)]) << t << "," << c << " portable " << portable;
        if (c % kQ8Block == 0) {
          ASSERT_EQ(xq.d[t * xq.ld / kQ8Block + c / kQ8Block], x_d[size_t((t * cols + c) / kQ8Block)]);
        }
      }
    std::vector<float> y(size_t(n * rows));
    matmul(x.data(), n, q, y.data());
    double worst_vs_f32 = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      EXPECT_NEAR(y[i], y_q8[i], 1e-5 * (1 + std::fabs(y_q8[i]))) << i;
      worst_vs_f32 = std::max(worst_vs_f32, std::fabs(y[i] - y_f32[i]));
    }
    EXPECT_GT(worst_vs_f32, 1e-3);  // quantization is visible: the golden can tell y_q8 from y_f32
  }
  avx512::force_portable(false);
}

}  // namespace
}  // namespace mnemo::kernels::cpu
