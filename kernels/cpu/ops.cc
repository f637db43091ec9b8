#include "kernels/cpu/ops.h"

#include "kernels/cpu/attention_rows.h"
#include "kernels/cpu/kv_rows.h"
#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace mnemo::kernels::cpu {

// Below this many multiply-adds a parallel region costs more than it saves,
// and far more when the machine is oversubscribed.
constexpr int64_t kParallelWork = 1 << 16;

void rmsnorm(const float* x, const float* w, float eps, int64_t n, int64_t dim, float* out) {
  parallel_for(n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* xr = x + t * dim;
      float* o = out + t * dim;
      float ss = 0;
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
      const float inv = 1.0f / std::sqrt(ss / float(dim) + eps);
      for (int64_t i = 0; i < dim; ++i) o[i] = w[i] * (xr[i] * inv);
    }
  }, n * dim > kParallelWork);
}

void rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const int32_t* positions,
          std::span<const float> inv_freq) {
  const int64_t half = head_dim / 2;
  parallel_for(n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
      for (int64_t i = 0; i < half; ++i) {
        // f32 angle, as the reference computes position * inv_freq in f32.
        const float angle = float(positions[t]) * inv_freq[size_t(i)];
        c[size_t(i)] = std::cos(angle);
        s[size_t(i)] = std::sin(angle);
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + (t * heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * c[size_t(i)] - b * s[size_t(i)];
          v[i + half] = b * c[size_t(i)] + a * s[size_t(i)];
        }
      }
    }
  }, n * heads * head_dim > kParallelWork);
}

void silu_mul(const float* gate, const float* up, int64_t count, float* out) {
  parallel_for(count, [&](int64_t i0, int64_t i1) {
    int64_t i = i0;
#if MNEMO_KV_AVX512
    // sigmoid(g) from e = exp(-|g|) <= 1, which never overflows: 1 / (1 + e)
    // for g >= 0, e / (1 + e) below. A scalar std::exp per element was a
    // tenth of a prefill.
    using namespace attn::simd;
    for (; i + 16 <= i1; i += 16) {
      const __m512 g = _mm512_loadu_ps(gate + i);
      const __m512 e = exp_nonpos(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(g)));
      const __m512 sig = _mm512_div_ps(_mm512_mask_blend_ps(_mm512_cmp_ps_mask(g, _mm512_setzero_ps(), _CMP_LT_OQ),
                                                            _mm512_set1_ps(1.0f), e),
                                       _mm512_add_ps(_mm512_set1_ps(1.0f), e));
      _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(g, sig), _mm512_loadu_ps(up + i)));
    }
#endif
    for (; i < i1; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  }, count > kParallelWork, 16);
}

void add_inplace(float* x, const float* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] += y[i];
}

void add_bias(float* x, const float* bias, int64_t n, int64_t dim) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < dim; ++i) x[t * dim + i] += bias[i];
}

void softmax(float* x, int64_t count) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < count; ++i) mx = std::max(mx, x[i]);
  if (!std::isfinite(mx)) {
    for (int64_t i = 0; i < count; ++i) x[i] = 0;
    return;
  }
  float sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += (x[i] = std::exp(x[i] - mx));
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < count; ++i) x[i] *= inv;
}

void kv_write(const KvView& kv, int64_t start, int64_t n, const float* k, const float* v) {
  const size_t row = size_t(kv.head_dim) * sizeof(float);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < kv.kv_heads; ++h) {
      const int64_t dst = (h * kv.capacity + start + t) * kv.head_dim;
      const int64_t src = (t * kv.kv_heads + h) * kv.head_dim;
      std::memcpy(kv.k + dst, k + src, row);
      std::memcpy(kv.v + dst, v + src, row);
    }
}

namespace {

// Slots [begin, end) of one KV head that attention must skip; begin == end
// when the head has none.
struct HoleRange {
  int64_t begin = 0, end = 0;
};

HoleRange hole_of(std::span<const int64_t> hole_begin, std::span<const int64_t> hole_end, int64_t kv_head) {
  if (hole_begin.empty()) return {};
  const int64_t b = hole_begin[size_t(kv_head)], e = hole_end[size_t(kv_head)];
  return b < e ? HoleRange{b, e} : HoleRange{};
}

// One work item per (tile of query tokens, KV head): all query heads of the
// GQA group for tile consecutive tokens (attention_rows.h), so each key and
// value row is read once per item. Tiles hold about kTileRows rows (tokens x
// group): enough to amortise reading a row, few enough for the score tile to
// stay in L1. Decode is the one-token tile. key_at(kv_head, j) and
// value_at(kv_head, j) locate position j (a row of f32 or bf16), so
// contiguous and paged caches of either element type share it. A tile reads
// keys [first of its first token, end of its last) minus its head's hole,
// walked as the two ranges [first, hole begin) and [hole end, end); each row
// is then limited to its own token's keys.
constexpr int64_t kTileRows = 16;

template <class KeyAt, class ValueAt>
void attention_loop(const float* q, int64_t n, int64_t heads, int64_t start, int64_t kv_heads, int64_t d, float scale,
                    float* out, int64_t window, std::span<const int64_t> hole_begin,
                    std::span<const int64_t> hole_end, KeyAt key_at, ValueAt value_at) {
  const int64_t group = heads / kv_heads;
  const int64_t tile = std::max<int64_t>(1, std::min(n, kTileRows / group));
  const int64_t tiles = (n + tile - 1) / tile;
  const int64_t work = n * heads * (start + n) * d;
  // Items handed out one at a time, the last tiles (the most keys) first:
  // heads differ in length (holes, windows) and tokens in how many keys
  // they see.
  std::atomic<int64_t> next{0};
  // Dynamic: a worker that wakes late finds the items taken and skips the
  // step instead of holding it up.
  run_on_team_dynamic([&](int, int) {
    attn::Scratch scratch;
    std::vector<attn::RowLimits> limits;
    for (int64_t item; (item = next.fetch_add(1, std::memory_order_relaxed)) < tiles * kv_heads;) {
      const int64_t ti = tiles - 1 - item / kv_heads, kvh = item % kv_heads;
      const int64_t t0 = ti * tile, nt = std::min(tile, n - t0);
      auto first_of = [&](int64_t end) { return window > 0 ? std::max<int64_t>(0, end - window) : 0; };
      const int64_t end = start + t0 + nt;  // causal: up to and including the tile's last token
      const int64_t first = first_of(start + t0 + 1);
      const HoleRange hole = hole_of(hole_begin, hole_end, kvh);
      const int64_t hb = std::clamp(hole.begin, first, end), he = std::clamp(hole.end, hb, end);
      const int64_t ranges[2][2] = {{first, hb}, {he, end}};
      limits.clear();
      if (nt > 1) {
        // Column of position x: the readable keys of the ranges below it.
        auto column = [&](int64_t x) {
          return std::clamp(x, first, hb) - first + (std::clamp(x, he, end) - he);
        };
        for (int64_t t = 0; t < nt; ++t) {
          const int64_t e = start + t0 + t + 1;
          limits.insert(limits.end(), size_t(group), attn::RowLimits{column(first_of(e)), column(e)});
        }
      }
      const int64_t stride = heads * d, off = t0 * stride + kvh * group * d;
      auto row = [&](int64_t r) { return off + (r / group) * stride + (r % group) * d; };
      attn::rows_attention(
          [&](int64_t r) { return q + row(r); }, [&](int64_t r) { return out + row(r); }, nt * group, d, scale, ranges,
          std::span<const attn::RowLimits>(limits), [&](int64_t j) { return key_at(kvh, j); },
          [&](int64_t j) { return value_at(kvh, j); }, scratch);
    }
  }, work > kParallelWork);
}

}  // namespace

void attention(const float* q, int64_t n, int64_t heads, int64_t start, const KvView& kv, float scale,
               float* out, int64_t window) {
  const int64_t d = kv.head_dim;
  attention_loop(q, n, heads, start, kv.kv_heads, d, scale, out, window, kv.hole_begin, kv.hole_end,
                 [&](int64_t kvh, int64_t j) { return kv.k + (kvh * kv.capacity + j) * d; },
                 [&](int64_t kvh, int64_t j) { return kv.v + (kvh * kv.capacity + j) * d; });
}

void paged_attention(const float* q, int64_t n, int64_t heads, int64_t start, const PagedKvView& kv, float scale,
                     float* out, int64_t window) {
  const int64_t d = kv.head_dim, bs = kv.block_size;
  auto run = [&]<class T>(const T*) {
    auto row = [&](std::span<const void* const> blocks, int64_t kvh, int64_t j) {
      return static_cast<const T*>(blocks[size_t(j / bs)]) + (kvh * bs + j % bs) * d;
    };
    attention_loop(q, n, heads, start, kv.kv_heads, d, scale, out, window, kv.hole_begin, kv.hole_end,
                   [&](int64_t kvh, int64_t j) { return row(kv.k_blocks, kvh, j); },
                   [&](int64_t kvh, int64_t j) { return row(kv.v_blocks, kvh, j); });
  };
  if (kv.dtype == KvDType::BF16) run(static_cast<const uint16_t*>(nullptr));
  else run(static_cast<const float*>(nullptr));
}

}  // namespace mnemo::kernels::cpu
