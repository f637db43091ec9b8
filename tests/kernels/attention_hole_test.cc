// Attention over KV heads with a hole (slots a compacted head does not hold):
// equal to attention over the same keys with the hole physically removed, on
// the GEMM path, the per-token path and the paged path. Hole slots are
// filled with NaN: reading one, even to multiply it by zero, shows.
#include <gtest/gtest.h>
#include "kernels/cpu/parallel.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/ops.h"

namespace mnemo::kernels::cpu {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Case {
  int64_t heads = 6, kv_heads = 3, d = 8, start = 0, n = 0;
  std::vector<int64_t> hole_begin, hole_end;  // per KV head
  std::vector<float> k, v, q;                 // k, v: [kv_heads][L][d]; q: [n][heads][d]
  int64_t L() const { return start + n; }

  Case(int64_t start_, int64_t n_, std::vector<int64_t> hb, std::vector<int64_t> he, uint32_t seed)
      : start(start_), n(n_), hole_begin(std::move(hb)), hole_end(std::move(he)) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    k.resize(size_t(kv_heads * L() * d));
    v.resize(k.size());
    q.resize(size_t(n * heads * d));
    for (auto* buf : {&k, &v, &q})
      for (float& x : *buf) x = dist(rng);
    for (int64_t h = 0; h < kv_heads; ++h)
      for (int64_t j = hole_begin[size_t(h)]; j < hole_end[size_t(h)]; ++j)
        for (int64_t i = 0; i < d; ++i) k[size_t((h * L() + j) * d + i)] = v[size_t((h * L() + j) * d + i)] = kNaN;
  }
  KvView view() { return {k.data(), v.data(), L(), kv_heads, d, hole_begin, hole_end}; }
};

// Per KV head: its keys without the hole as a one-head cache, its query heads
// shifted to start - hole size, run through the unchanged hole-free path.
std::vector<float> without_holes(const Case& c) {
  const int64_t group = c.heads / c.kv_heads, d = c.d;
  std::vector<float> out(c.q.size());
  for (int64_t h = 0; h < c.kv_heads; ++h) {
    const int64_t hb = c.hole_begin[size_t(h)], he = c.hole_end[size_t(h)], gap = he - hb;
    std::vector<float> k, v, q(size_t(c.n * group * d)), o(q.size());
    for (int64_t j = 0; j < c.L(); ++j) {
      if (j >= hb && j < he) continue;
      const auto at = c.k.begin() + (h * c.L() + j) * d;
      k.insert(k.end(), at, at + d);
      const auto vat = c.v.begin() + (h * c.L() + j) * d;
      v.insert(v.end(), vat, vat + d);
    }
    for (int64_t t = 0; t < c.n; ++t)
      for (int64_t g = 0; g < group * d; ++g)
        q[size_t(t * group * d + g)] = c.q[size_t((t * c.heads + h * group) * d + g)];
    const KvView kv{k.data(), v.data(), c.L() - gap, 1, d};
    attention(q.data(), c.n, group, c.start - gap, kv, 0.3f, o.data());
    for (int64_t t = 0; t < c.n; ++t)
      for (int64_t g = 0; g < group * d; ++g)
        out[size_t((t * c.heads + h * group) * d + g)] = o[size_t(t * group * d + g)];
  }
  return out;
}

// The same cache in shuffled blocks of bs slots.
struct Paged {
  std::vector<std::vector<float>> kb, vb;
  std::vector<const void*> kp, vp;
  Paged(const Case& c, int64_t bs) {
    const int64_t nb = (c.L() + bs - 1) / bs;
    kb.resize(size_t(nb));
    vb.resize(size_t(nb));
    for (int64_t b = 0; b < nb; ++b) {
      auto& K = kb[size_t(nb - 1 - b)];
      auto& V = vb[size_t(nb - 1 - b)];
      K.assign(size_t(c.kv_heads * bs * c.d), kNaN);
      V.assign(K.size(), kNaN);
      for (int64_t h = 0; h < c.kv_heads; ++h)
        for (int64_t s = 0; s < bs && b * bs + s < c.L(); ++s)
          for (int64_t i = 0; i < c.d; ++i) {
            K[size_t((h * bs + s) * c.d + i)] = c.k[size_t((h * c.L() + b * bs + s) * c.d + i)];
            V[size_t((h * bs + s) * c.d + i)] = c.v[size_t((h * c.L() + b * bs + s) * c.d + i)];
          }
      kp.push_back(K.data());
      vp.push_back(V.data());
    }
  }
};

void expect_near(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5f) << what << " element " << i;
}

// Holes of different sizes per head (head 1 has none), queries after them:
// how the engine uses it after an uneven compaction.
TEST(AttentionHoles, EqualAttentionWithTheHoleRemoved) {
  set_num_threads(2);
  for (auto [start, n] : {std::pair<int64_t, int64_t>{30, 40}, {30, 1}, {41, 3}, {20, 33}}) {
    SCOPED_TRACE("start " + std::to_string(start) + " n " + std::to_string(n));
    Case c(start, n, {5, 0, 0}, {19, 0, 20}, uint32_t(start * 100 + n));
    const std::vector<float> want = without_holes(c);
    std::vector<float> got(c.q.size());
    attention(c.q.data(), c.n, c.heads, c.start, c.view(), 0.3f, got.data());
    expect_near(got, want, "contiguous");
    for (int64_t bs : {4, 16}) {
      Paged p(c, bs);
      const PagedKvView paged{p.kp, p.vp, bs, c.kv_heads, c.d, c.hole_begin, c.hole_end};
      std::fill(got.begin(), got.end(), 0.0f);
      paged_attention(c.q.data(), c.n, c.heads, c.start, paged, 0.3f, got.data());
      expect_near(got, want, "paged");
    }
  }
}

// Naive double-precision attention with an explicit per-key mask: window,
// causality and the hole, including queries inside a hole (no keys: zero).
std::vector<double> naive(const Case& c, int64_t window) {
  const int64_t group = c.heads / c.kv_heads, d = c.d;
  std::vector<double> out(c.q.size(), 0.0);
  for (int64_t t = 0; t < c.n; ++t)
    for (int64_t h = 0; h < c.heads; ++h) {
      const int64_t g = h / group, end = c.start + t + 1;
      std::vector<double> p;
      std::vector<int64_t> keys;
      for (int64_t j = 0; j < end; ++j) {
        if (window > 0 && j <= end - 1 - window) continue;
        if (j >= c.hole_begin[size_t(g)] && j < c.hole_end[size_t(g)]) continue;
        double dot = 0;
        for (int64_t i = 0; i < d; ++i) dot += double(c.q[size_t((t * c.heads + h) * d + i)]) * c.k[size_t((g * c.L() + j) * d + i)];
        p.push_back(dot * 0.3);
        keys.push_back(j);
      }
      double mx = -1e300, sum = 0;
      for (double x : p) mx = std::max(mx, x);
      for (double& x : p) sum += (x = std::exp(x - mx));
      for (size_t r = 0; r < keys.size(); ++r)
        for (int64_t i = 0; i < d; ++i)
          out[size_t((t * c.heads + h) * d + i)] += p[r] / sum * c.v[size_t((g * c.L() + keys[r]) * d + i)];
    }
  return out;
}

TEST(AttentionHoles, WindowsAndHolesReachingIntoTheChunkMatchNaive) {
  set_num_threads(2);
  for (int64_t window : {0, 9})
    for (auto [start, n] : {std::pair<int64_t, int64_t>{12, 36}, {12, 5}}) {
      SCOPED_TRACE("window " + std::to_string(window) + " n " + std::to_string(n));
      // Head 0's hole covers the first queries' own slots; head 2's starts at 0.
      Case c(start, n, {10, 3, 0}, {15, 3, 7}, uint32_t(7 + window + n));
      const std::vector<double> want = naive(c, window);
      std::vector<float> got(c.q.size());
      attention(c.q.data(), c.n, c.heads, c.start, c.view(), 0.3f, got.data(), window);
      Paged p(c, 4);
      const PagedKvView paged{p.kp, p.vp, 4, c.kv_heads, c.d, c.hole_begin, c.hole_end};
      std::vector<float> got_paged(c.q.size());
      paged_attention(c.q.data(), c.n, c.heads, c.start, paged, 0.3f, got_paged.data(), window);
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 2e-5) << "contiguous element " << i;
        ASSERT_NEAR(got_paged[i], want[i], 2e-5) << "paged element " << i;
      }
    }
}

// Without holes the views behave exactly as before (same bits as a view
// whose hole spans are given but empty).
TEST(AttentionHoles, EmptyHolesChangeNothing) {
  Case c(20, 35, {0, 0, 0}, {0, 0, 0}, 3);
  KvView none = c.view();
  none.hole_begin = {};
  none.hole_end = {};
  for (int64_t n : {int64_t(35), int64_t(2)}) {
    std::vector<float> a(size_t(n * c.heads * c.d)), b(a.size());
    attention(c.q.data(), n, c.heads, c.start, none, 0.3f, a.data());
    attention(c.q.data(), n, c.heads, c.start, c.view(), 0.3f, b.data());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]);
  }
}

}  // namespace
}  // namespace mnemo::kernels::cpu
