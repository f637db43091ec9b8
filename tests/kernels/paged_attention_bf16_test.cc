// Decode attention over bf16 KV blocks (kernels/cpu/kv_rows.h) against a
// double-precision reference: exact up to f32 arithmetic when the reference
// reads the same rounded keys and values, and within the bf16 bound of the
// unrounded f32 ones. Holes (compacted heads) hold NaN, so reading one shows;
// sliding windows and head dims with and without a vector tail.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/kv_rows.h"
#include "kernels/cpu/ops.h"
#include "kernels/dtype.h"

namespace mnemo::kernels::cpu {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kScale = 0.25;
// bf16 keeps 8 significant bits: round to nearest even is off by at most
// half a unit in the last place, 2^-9 relative.
constexpr double kBf16RelError = 1.0 / 512;

struct Case {
  int64_t heads = 8, kv_heads = 2, d, L;
  std::vector<int64_t> hole_begin, hole_end;
  std::vector<float> k, v, q;  // k, v: [kv_heads][L][d]; q: [n][heads][d]
  Case(int64_t d_, int64_t L_, int64_t n, std::vector<int64_t> hb, std::vector<int64_t> he, uint32_t seed,
       int64_t heads_ = 8)
      : heads(heads_), d(d_), L(L_), hole_begin(std::move(hb)), hole_end(std::move(he)) {
    std::mt19937 rng(seed);
    // Queries sized so that scores spread over several units: a peaked
    // softmax is where key errors matter most.
    std::normal_distribution<float> dist(0.0f, 1.0f);
    k.resize(size_t(kv_heads * L * d));
    v.resize(k.size());
    q.resize(size_t(n * heads * d));
    for (auto* buf : {&k, &v, &q})
      for (float& x : *buf) x = dist(rng) * (buf == &q ? 12.0f / std::sqrt(float(d)) : 1.0f);
    for (int64_t h = 0; h < kv_heads; ++h)
      for (int64_t j = hole_begin[size_t(h)]; j < hole_end[size_t(h)]; ++j)
        for (int64_t i = 0; i < d; ++i) k[size_t((h * L + j) * d + i)] = v[size_t((h * L + j) * d + i)] = kNaN;
  }
};

// The cache as shuffled bf16 blocks of bs slots; unused slots are NaN too.
struct Bf16Blocks {
  std::vector<std::vector<uint16_t>> kb, vb;
  std::vector<const void*> kp, vp;
  Bf16Blocks(const Case& c, int64_t bs) {
    const int64_t nb = (c.L + bs - 1) / bs;
    kb.resize(size_t(nb));
    vb.resize(size_t(nb));
    for (int64_t b = 0; b < nb; ++b) {
      auto& K = kb[size_t(nb - 1 - b)];
      auto& V = vb[size_t(nb - 1 - b)];
      K.assign(size_t(c.kv_heads * bs * c.d), f32_to_bf16(kNaN));
      V.assign(K.size(), f32_to_bf16(kNaN));
      for (int64_t h = 0; h < c.kv_heads; ++h)
        for (int64_t s = 0; s < bs && b * bs + s < c.L; ++s) {
          f32_row_to_bf16(&c.k[size_t((h * c.L + b * bs + s) * c.d)], c.d, &K[size_t((h * bs + s) * c.d)]);
          f32_row_to_bf16(&c.v[size_t((h * c.L + b * bs + s) * c.d)], c.d, &V[size_t((h * bs + s) * c.d)]);
        }
      kp.push_back(K.data());
      vp.push_back(V.data());
    }
  }
};

struct Reference {
  std::vector<double> out;
  std::vector<double> bound;  // per element: the bf16 bound of the f32 cache's output
};

// Naive attention in double over k, v (either the f32 originals or their
// bf16 roundings), with causality, window and holes as explicit masks. With
// the bound: logits move by at most delta = scale * sum_i |q_i k_i| * 2^-9,
// so the softmax weights p' = p e^dj / sum p e^dk move by sum_j |p'_j - p_j|
// <= e^(2 delta) - 1 in total; values move by 2^-9 relative. Hence
// |o' - o| <= max_j |v_j| * (e^(2 delta) - 1 + 2^-9) per element.
Reference naive(const Case& c, int64_t start, int64_t n, int64_t window, bool rounded) {
  auto kv = [&](const std::vector<float>& x, size_t at) {
    return rounded ? double(bf16_to_f32(f32_to_bf16(x[at]))) : double(x[at]);
  };
  const int64_t group = c.heads / c.kv_heads, d = c.d;
  Reference r{std::vector<double>(size_t(n * c.heads * d), 0.0), std::vector<double>(size_t(n * c.heads * d), 0.0)};
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < c.heads; ++h) {
      const int64_t g = h / group, end = start + t + 1;
      std::vector<double> p;
      std::vector<int64_t> keys;
      double delta = 0;
      for (int64_t j = 0; j < end; ++j) {
        if (window > 0 && j <= end - 1 - window) continue;
        if (j >= c.hole_begin[size_t(g)] && j < c.hole_end[size_t(g)]) continue;
        double dot = 0, mag = 0;
        for (int64_t i = 0; i < d; ++i) {
          const double qi = c.q[size_t((t * c.heads + h) * d + i)], ki = kv(c.k, size_t((g * c.L + j) * d + i));
          dot += qi * ki;
          mag += std::abs(qi * ki);
        }
        p.push_back(dot * kScale);
        keys.push_back(j);
        delta = std::max(delta, mag * kScale * kBf16RelError);
      }
      double mx = -1e300, sum = 0;
      for (double x : p) mx = std::max(mx, x);
      for (double& x : p) sum += (x = std::exp(x - mx));
      for (int64_t i = 0; i < d; ++i) {
        double vmax = 0;
        const size_t o = size_t((t * c.heads + h) * d + i);
        for (size_t s = 0; s < keys.size(); ++s) {
          const double vi = kv(c.v, size_t((g * c.L + keys[s]) * d + i));
          r.out[o] += p[s] / sum * vi;
          vmax = std::max(vmax, std::abs(vi));
        }
        r.bound[o] = vmax * (std::expm1(2 * delta) + kBf16RelError);
      }
    }
  return r;
}

TEST(PagedAttentionBf16, MatchesTheReferenceWithinTheBf16BoundThroughHolesAndWindows) {
  omp_set_num_threads(2);
  double worst_ratio = 0;  // measured error / bound, over every case
  for (int64_t d : {8, 40, 64})
    for (int64_t window : {0, 24})
      for (auto [start, n] : {std::pair<int64_t, int64_t>{70, 1}, {66, 5}, {40, 31}}) {
        SCOPED_TRACE("d " + std::to_string(d) + " window " + std::to_string(window) + " start " +
                     std::to_string(start) + " n " + std::to_string(n));
        // KV head 0 has a hole in the middle (a compacted head that kept
        // fewer slots), head 1 none.
        Case c(d, start + n, n, {9, 0}, {30, 0}, uint32_t(d * 1000 + window * 10 + n));
        for (int64_t bs : {4, 16}) {
          Bf16Blocks blocks(c, bs);
          const PagedKvView view{blocks.kp, blocks.vp, bs, c.kv_heads, d, c.hole_begin, c.hole_end, KvDType::BF16};
          std::vector<float> got(c.q.size());
          paged_attention(c.q.data(), n, c.heads, start, view, float(kScale), got.data(), window);
          const Reference same = naive(c, start, n, window, /*rounded=*/true);
          const Reference f32 = naive(c, start, n, window, /*rounded=*/false);
          for (size_t i = 0; i < got.size(); ++i) {
            ASSERT_TRUE(std::isfinite(got[i])) << "element " << i << ": a hole or unused slot was read";
            // Same inputs: only f32 accumulation differs from the reference.
            ASSERT_NEAR(got[i], same.out[i], 2e-5) << "element " << i;
            // The f32 cache's answer: within the bound (plus f32 arithmetic).
            const double err = std::abs(got[i] - f32.out[i]);
            ASSERT_LE(err, f32.bound[i] + 2e-5) << "element " << i;
            if (f32.bound[i] > 0) worst_ratio = std::max(worst_ratio, (err - 2e-5) / f32.bound[i]);
          }
        }
      }
  std::printf("worst error / bound: %.3f\n", worst_ratio);
}

// The group kernel's other shapes: groups of 3 query heads (its 4- and
// 2-head value tiles fall through to 2 + 1), head dims of 5 and 8 vector
// chunks (the run-time and the unrolled paths), and contexts of many 16-key
// blocks with a hole and a window cutting blocks short.
TEST(PagedAttentionBf16, GroupsOfThreeAndWideHeadsOverLongContexts) {
  omp_set_num_threads(2);
  for (int64_t d : {72, 128})
    for (int64_t window : {0, 101})
      for (auto [start, n] : {std::pair<int64_t, int64_t>{300, 1}, {297, 4}, {270, 31}}) {
        SCOPED_TRACE("d " + std::to_string(d) + " window " + std::to_string(window) + " n " + std::to_string(n));
        Case c(d, start + n, n, {0, 17}, {0, 150}, uint32_t(d * 7 + window + n), /*heads=*/6);
        Bf16Blocks blocks(c, 16);
        const PagedKvView view{blocks.kp, blocks.vp, 16, c.kv_heads, d, c.hole_begin, c.hole_end, KvDType::BF16};
        std::vector<float> got(c.q.size());
        paged_attention(c.q.data(), n, c.heads, start, view, float(kScale), got.data(), window);
        const Reference same = naive(c, start, n, window, /*rounded=*/true);
        for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], same.out[i], 2e-5) << "element " << i;
      }
}

// Prefill chunks of single-head groups run in tiles of 16 tokens: windows
// shorter than a tile, a hole inside a tile's keys, chunks starting at 0 and
// ending mid-tile, all against the reference row by row.
TEST(PagedAttentionBf16, PrefillTilesMaskEachRowToItsOwnKeys) {
  omp_set_num_threads(2);
  for (int64_t window : {0, 5, 24})
    for (auto [start, n] : {std::pair<int64_t, int64_t>{40, 31}, {0, 40}, {10, 17}}) {
      SCOPED_TRACE("window " + std::to_string(window) + " start " + std::to_string(start) + " n " + std::to_string(n));
      Case c(64, start + n, n, {5, 0}, {12, 0}, uint32_t(window * 100 + n), /*heads=*/2);
      Bf16Blocks blocks(c, 16);
      const PagedKvView view{blocks.kp, blocks.vp, 16, c.kv_heads, 64, c.hole_begin, c.hole_end, KvDType::BF16};
      std::vector<float> got(c.q.size());
      paged_attention(c.q.data(), n, c.heads, start, view, float(kScale), got.data(), window);
      const Reference same = naive(c, start, n, window, /*rounded=*/true);
      for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], same.out[i], 2e-5) << "element " << i;
    }
}

// Row conversions: the vector path rounds as the scalar reference does
// (nearest, ties to even), writes nothing past the row, widens exactly.
TEST(PagedAttentionBf16, RowConversionsMatchTheScalarReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (int64_t n : {1, 15, 16, 17, 40, 64}) {
    std::vector<float> x(static_cast<size_t>(n)), back(static_cast<size_t>(n), kNaN);
    for (float& e : x) e = dist(rng);
    std::vector<uint16_t> h(size_t(n) + 1, 0xbeef);  // one guard element past the row
    f32_row_to_bf16(x.data(), n, h.data());
    EXPECT_EQ(h[size_t(n)], 0xbeef) << "wrote past the row of " << n;
    bf16_row_to_f32(h.data(), n, back.data());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(h[size_t(i)], f32_to_bf16(x[size_t(i)])) << "rounding of element " << i << " of " << n;
      ASSERT_EQ(back[size_t(i)], bf16_to_f32(h[size_t(i)]));
    }
    // Ties round to even: 1 + 2^-8 lies halfway between two bf16 values.
    const float tie = 1.0f + 1.0f / 256;
    std::vector<float> ties(size_t(n), tie);
    f32_row_to_bf16(ties.data(), n, h.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[size_t(i)], 0x3f80) << "tie of element " << i;
  }
}

}  // namespace
}  // namespace mnemo::kernels::cpu
