// The element-wise and attention ops against naive double-precision versions.
#include <gtest/gtest.h>
#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <random>
#include <utility>
#include <vector>

#include "kernels/cpu/ops.h"

namespace mnemo::kernels::cpu {
namespace {

std::vector<float> randn(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(count);
  for (auto& e : v) e = nd(rng);
  return v;
}

TEST(OpsTest, RmsNorm) {
  const int64_t n = 3, dim = 37;
  auto x = randn(size_t(n * dim), 1), w = randn(size_t(dim), 2);
  std::vector<float> out(x.size());
  rmsnorm(x.data(), w.data(), 1e-5f, n, dim, out.data());
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(x[size_t(t * dim + i)]) * x[size_t(t * dim + i)];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
    for (int64_t i = 0; i < dim; ++i) {
      const size_t k = size_t(t * dim + i);
      EXPECT_NEAR(out[k], w[size_t(i)] * x[k] * inv, 1e-5);
    }
  }
}

TEST(OpsTest, RopeRotatesHalves) {
  const int64_t n = 2, heads = 3, hd = 8;
  auto x = randn(size_t(n * heads * hd), 3);
  auto orig = x;
  const std::vector<float> inv_freq = {1.0f, 0.1f, 0.01f, 0.001f};
  const int32_t pos[] = {0, 5};
  rope(x.data(), n, heads, hd, pos, inv_freq);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < hd / 2; ++i) {
        const size_t b = size_t((t * heads + h) * hd);
        const double a = double(pos[t]) * inv_freq[size_t(i)];
        const double x0 = orig[b + size_t(i)], x1 = orig[b + size_t(i + hd / 2)];
        EXPECT_NEAR(x[b + size_t(i)], x0 * std::cos(a) - x1 * std::sin(a), 1e-5);
        EXPECT_NEAR(x[b + size_t(i + hd / 2)], x1 * std::cos(a) + x0 * std::sin(a), 1e-5);
      }
}

// The vector path (16 at a time) and the scalar tail, over gates from deep
// negative (the sigmoid underflows to 0) to large positive (it saturates at 1),
// within a few ulp of a double reference.
TEST(OpsTest, SiluMul) {
  auto g = randn(100, 4), u = randn(100, 5);
  for (size_t i = 0; i < g.size(); ++i) g[i] *= 6.0f;
  const float extremes[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, -88.0f, 104.0f, -104.0f, 1e4f, -1e4f, 30.0f, -30.0f};
  std::copy(std::begin(extremes), std::end(extremes), g.begin() + 40);
  std::vector<float> out(100);
  silu_mul(g.data(), u.data(), 100, out.data());
  for (size_t i = 0; i < 100; ++i) {
    const double ref = double(g[i]) / (1 + std::exp(-double(g[i]))) * u[i];
    EXPECT_NEAR(out[i], ref, 4e-7 * std::abs(ref) + 1e-37) << "gate " << g[i];
  }
}

TEST(OpsTest, SoftmaxSumsToOneAndHandlesMaskedRows) {
  std::vector<float> x = {1, 2, 3, -INFINITY};
  softmax(x.data(), 4);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(x[0], std::exp(1.0) / z, 1e-6);
  EXPECT_NEAR(x[2], std::exp(3.0) / z, 1e-6);
  EXPECT_EQ(x[3], 0.0f);
  std::vector<float> masked = {-INFINITY, -INFINITY};
  softmax(masked.data(), 2);
  EXPECT_EQ(masked[0], 0.0f);
}

// Causal GQA over a KV store filled by kv_write, against explicit loops.
TEST(OpsTest, AttentionMatchesNaive) {
  const int64_t heads = 4, kv_heads = 2, d = 8, start = 3, n = 5, cap = 16;
  const float scale = 0.35f;
  std::vector<float> kbuf(size_t(kv_heads * cap * d)), vbuf(kbuf.size());
  KvView kv{kbuf.data(), vbuf.data(), cap, kv_heads, d};
  auto k = randn(size_t((start + n) * kv_heads * d), 6), v = randn(k.size(), 7);
  kv_write(kv, 0, start + n, k.data(), v.data());
  auto q = randn(size_t(n * heads * d), 8);
  std::vector<float> out(q.size());
  set_num_threads(2);
  attention(q.data(), n, heads, start, kv, scale, out.data());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t g = h / (heads / kv_heads), len = start + t + 1;
      std::vector<double> p(static_cast<size_t>(len));
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < len; ++j) {
        double dot = 0;
        for (int64_t i = 0; i < d; ++i)
          dot += double(q[size_t((t * heads + h) * d + i)]) * k[size_t((j * kv_heads + g) * d + i)];
        p[size_t(j)] = dot * scale;
        mx = std::max(mx, p[size_t(j)]);
      }
      for (auto& e : p) sum += (e = std::exp(e - mx));
      for (int64_t i = 0; i < d; ++i) {
        double o = 0;
        for (int64_t j = 0; j < len; ++j) o += p[size_t(j)] / sum * v[size_t((j * kv_heads + g) * d + i)];
        EXPECT_NEAR(out[size_t((t * heads + h) * d + i)], o, 1e-5);
      }
    }
}

}  // namespace
}  // namespace mnemo::kernels::cpu

namespace mnemo::kernels::cpu {
namespace {

// A chunk runs in tiles of several tokens, each row masked to its own
// causal end: each row must equal the one-token path at the same position,
// with and without a sliding window (shorter than a tile, too).
TEST(OpsTest, ChunkTilesMatchPerTokenPath) {
  const int64_t heads = 8, kv_heads = 2, d = 16, start = 10, n = 45, cap = 64;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> k(size_t(kv_heads * cap * d)), v(k.size()), q(size_t(n * heads * d));
  for (auto* buf : {&k, &v, &q})
    for (float& x : *buf) x = dist(rng);
  const KvView kv{k.data(), v.data(), cap, kv_heads, d};
  for (int64_t window : {0, 7}) {
    std::vector<float> whole(q.size()), one(size_t(heads * d));
    attention(q.data(), n, heads, start, kv, 0.25f, whole.data(), window);
    for (int64_t t = 0; t < n; ++t) {
      attention(&q[size_t(t * heads * d)], 1, heads, start + t, kv, 0.25f, one.data(), window);
      for (int64_t i = 0; i < heads * d; ++i)
        ASSERT_NEAR(whole[size_t(t * heads * d + i)], one[size_t(i)], 1e-5f) << "t=" << t << " window=" << window;
    }
  }
}

}  // namespace
}  // namespace mnemo::kernels::cpu

namespace mnemo::kernels::cpu {
namespace {

// The paged cache holds the same keys in shuffled blocks: attention over it
// equals attention over the contiguous layout, for decode and for chunks.
TEST(OpsTest, PagedAttentionMatchesContiguous) {
  const int64_t heads = 6, kv_heads = 3, d = 8, bs = 4, cap = 40;
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> k(size_t(kv_heads * cap * d)), v(k.size()), q(size_t(7 * heads * d));
  for (auto* buf : {&k, &v, &q})
    for (float& x : *buf) x = dist(rng);
  const KvView flat{k.data(), v.data(), cap, kv_heads, d};
  // Blocks in reverse order in memory, as a pool hands them out.
  const int64_t nblocks = cap / bs;
  std::vector<std::vector<float>> kb(static_cast<size_t>(nblocks)), vb(static_cast<size_t>(nblocks));
  std::vector<const void*> kp, vp;
  for (int64_t b = 0; b < nblocks; ++b) {
    auto& K = kb[size_t(nblocks - 1 - b)];
    auto& V = vb[size_t(nblocks - 1 - b)];
    K.resize(size_t(kv_heads * bs * d));
    V.resize(K.size());
    for (int64_t h = 0; h < kv_heads; ++h)
      for (int64_t s = 0; s < bs; ++s)
        for (int64_t i = 0; i < d; ++i) {
          K[size_t((h * bs + s) * d + i)] = k[size_t((h * cap + b * bs + s) * d + i)];
          V[size_t((h * bs + s) * d + i)] = v[size_t((h * cap + b * bs + s) * d + i)];
        }
    kp.push_back(K.data());
    vp.push_back(V.data());
  }
  const PagedKvView paged{kp, vp, bs, kv_heads, d};
  for (int64_t window : {0, 5})
    for (auto [start, n] : {std::pair<int64_t, int64_t>{0, 7}, {13, 1}, {30, 3}}) {
      std::vector<float> a(size_t(n * heads * d)), b(a.size());
      attention(q.data(), n, heads, start, flat, 0.3f, a.data(), window);
      paged_attention(q.data(), n, heads, start, paged, 0.3f, b.data(), window);
      for (size_t i = 0; i < a.size(); ++i) ASSERT_FLOAT_EQ(a[i], b[i]) << "start " << start << " window " << window;
    }
}

}  // namespace
}  // namespace mnemo::kernels::cpu
