#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/profile.h"
#include "tests/cuda/gpu_test.h"

namespace mnemo::kernels::cuda {
namespace {

std::vector<float> random_vector(size_t count, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(count);
  for (float& f : v) f = dist(rng);
  return v;
}

struct Shape {
  int64_t n, dim;
};

// Widths below, at and above a warp and the block cap, and model widths.
const Shape kShapes[] = {{1, 1}, {1, 31}, {3, 32}, {4, 100}, {2, 512}, {33, 513}, {7, 2048}, {5, 4096}, {2, 5120}};

TEST(RmsnormCuda, MatchesCpu) {
  MNEMO_SKIP_WITHOUT_GPU();
  uint32_t seed = 1;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(testing::Message() << "n=" << s.n << " dim=" << s.dim);
    const auto x = random_vector(size_t(s.n * s.dim), -3.0f, 3.0f, seed++);
    const auto w = random_vector(size_t(s.dim), 0.5f, 1.5f, seed++);
    std::vector<float> want(x.size()), got(x.size());
    cpu::rmsnorm(x.data(), w.data(), 1e-5f, s.n, s.dim, want.data());

    DeviceBuffer<float> dx{std::span<const float>(x)}, dw{std::span<const float>(w)}, dout(x.size());
    rmsnorm(dx.data(), dw.data(), 1e-5f, s.n, s.dim, dout.data());
    dout.download(got);
    // Summation order differs (tree vs. sequential): a few ulps of the row's scale.
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::fabs(want[i]))) << i;
  }
}

TEST(RmsnormCuda, TinyRowsUseEps) {
  MNEMO_SKIP_WITHOUT_GPU();
  const std::vector<float> x = {0.0f, 0.0f, 1e-4f, -1e-4f};
  const std::vector<float> w = {1.0f, 2.0f};
  std::vector<float> want(4), got(4);
  cpu::rmsnorm(x.data(), w.data(), 1e-2f, 2, 2, want.data());
  DeviceBuffer<float> dx{std::span<const float>(x)}, dw{std::span<const float>(w)}, dout(4);
  rmsnorm(dx.data(), dw.data(), 1e-2f, 2, 2, dout.data());
  dout.download(got);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(got[i], want[i], 1e-6f) << i;
}

TEST(RmsnormCuda, EmptyIsNoOp) {
  MNEMO_SKIP_WITHOUT_GPU();
  rmsnorm(nullptr, nullptr, 1e-5f, 0, 4096, nullptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

TEST(RmsnormCuda, ProfileCountsBytes) {
  MNEMO_SKIP_WITHOUT_GPU();
  const int64_t n = 8, dim = 1024;
  const auto count = static_cast<size_t>(n * dim);
  DeviceBuffer<float> dx(count), dw(static_cast<size_t>(dim)), dout(count);
  profile_start();
  for (int i = 0; i < 3; ++i) rmsnorm(dx.data(), dw.data(), 1e-5f, n, dim, dout.data());
  const auto stats = profile_stop();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].kernel, "rmsnorm");
  EXPECT_EQ(stats[0].launches, 3);
  EXPECT_EQ(stats[0].bytes, 3 * (2 * n * dim + dim) * int64_t(sizeof(float)));
  EXPECT_GT(stats[0].ms, 0.0);
}

}  // namespace
}  // namespace mnemo::kernels::cuda
