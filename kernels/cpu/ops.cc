#include "kernels/cpu/ops.h"

#include "kernels/cpu/attention_decode.h"
#include "kernels/cpu/kv_rows.h"
#include "kernels/cpu/matmul.h"
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

// From this many query tokens on, attention runs as GEMMs.
constexpr int64_t kAttentionGemmTokens = 32;

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
    for (int64_t i = i0; i < i1; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  }, count > kParallelWork);
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
  int64_t size() const { return end - begin; }
  // How many readable slots lie below slot x.
  int64_t valid_below(int64_t x) const { return x <= begin ? x : x <= end ? begin : x - size(); }
};

HoleRange hole_of(std::span<const int64_t> hole_begin, std::span<const int64_t> hole_end, int64_t kv_head) {
  if (hole_begin.empty()) return {};
  const int64_t b = hole_begin[size_t(kv_head)], e = hole_end[size_t(kv_head)];
  return b < e ? HoleRange{b, e} : HoleRange{};
}

// Prefill: per query head, scores = Q_h K^T and out = P V as two GEMMs over
// the whole chunk (future keys masked after), instead of one dot product per
// (token, key): the GEMM kernels keep the vector units busy. A head with a
// hole runs over a copy of its readable keys only, so the GEMM never touches
// the hole and needs no mask for it.
void attention_gemm(const float* q, int64_t n, int64_t heads, int64_t start, const KvView& kv, float scale,
                    float* out, int64_t window) {
  const int64_t d = kv.head_dim, group = heads / kv.kv_heads, L = start + n;
  std::vector<float> qh(size_t(n * d)), scores(size_t(n * L)), vt(size_t(d * L)), oh(size_t(n * d)), kc;
  for (int64_t kvh = 0; kvh < kv.kv_heads; ++kvh) {
    const HoleRange hole = hole_of(kv.hole_begin, kv.hole_end, kvh);
    const int64_t hb = std::min(hole.begin, L), he = std::min(hole.end, L);
    const int64_t Lv = L - (he - hb);  // keys the GEMMs see
    const float* kb = kv.k + kvh * kv.capacity * d;
    const float* vb = kv.v + kvh * kv.capacity * d;
    if (he > hb) {
      kc.resize(size_t(Lv * d));
      std::memcpy(kc.data(), kb, size_t(hb * d) * sizeof(float));
      std::memcpy(kc.data() + hb * d, kb + he * d, size_t((L - he) * d) * sizeof(float));
      kb = kc.data();
    }
    const MatrixView k{kb, DType::F32, Lv, d};
    for (int64_t jj = 0; jj < Lv; ++jj) {
      const int64_t j = jj < hb ? jj : jj + (he - hb);
      for (int64_t i = 0; i < d; ++i) vt[size_t(i * Lv + jj)] = vb[j * d + i];
    }
    const MatrixView v_t{vt.data(), DType::F32, d, Lv};
    const HoleRange clipped{hb, he};
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      for (int64_t t = 0; t < n; ++t) std::memcpy(&qh[size_t(t * d)], q + (t * heads + h) * d, size_t(d) * sizeof(float));
      matmul(qh.data(), n, k, scores.data());
      parallel_for(n, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* row = &scores[size_t(t * Lv)];
        const int64_t end = start + t + 1;
        const int64_t first = window > 0 ? std::max<int64_t>(0, end - window) : 0;
        // The same bounds counted in readable keys (identity without a hole).
        const int64_t vfirst = clipped.valid_below(first), vend = clipped.valid_below(end);
        for (int64_t j = 0; j < Lv; ++j)
          row[j] = j < vfirst || j >= vend ? -std::numeric_limits<float>::infinity() : row[j] * scale;
        softmax(row, Lv);
      }
      });
      matmul(scores.data(), n, v_t, oh.data());
      for (int64_t t = 0; t < n; ++t) std::memcpy(out + (t * heads + h) * d, &oh[size_t(t * d)], size_t(d) * sizeof(float));
    }
  }
}

// The decode path: one work item per (query token, KV head), all query heads
// of the GQA group together (attention_decode.h), so each key and value row
// is read once per group. key_at(kv_head, j) and value_at(kv_head, j) locate
// position j (a row of f32 or bf16), so contiguous and paged caches of either
// element type share it. A query reads keys [first, end) minus its head's
// hole, walked as the two ranges [first, hole begin) and [hole end, end).
template <class KeyAt, class ValueAt>
void attention_loop(const float* q, int64_t n, int64_t heads, int64_t start, int64_t kv_heads, int64_t d, float scale,
                    float* out, int64_t window, std::span<const int64_t> hole_begin,
                    std::span<const int64_t> hole_end, KeyAt key_at, ValueAt value_at) {
  const int64_t group = heads / kv_heads;
  const int64_t work = n * heads * (start + n) * d;
  // Items handed out one at a time: heads differ in length (holes, windows)
  // and queries in how many keys they see.
  std::atomic<int64_t> next{0};
  run_on_team([&](int, int) {
    decode::Scratch scratch;
    for (int64_t tk; (tk = next.fetch_add(1, std::memory_order_relaxed)) < n * kv_heads;) {
      const int64_t t = tk / kv_heads, kvh = tk % kv_heads;
      const int64_t end = start + t + 1;  // causal: up to and including itself
      const int64_t first = window > 0 ? std::max<int64_t>(0, end - window) : 0;
      const HoleRange hole = hole_of(hole_begin, hole_end, kvh);
      const int64_t hb = std::clamp(hole.begin, first, end), he = std::clamp(hole.end, hb, end);
      const int64_t ranges[2][2] = {{first, hb}, {he, end}};
      const int64_t off = (t * heads + kvh * group) * d;
      decode::group_attention(
          q + off, group, d, scale, ranges, [&](int64_t j) { return key_at(kvh, j); },
          [&](int64_t j) { return value_at(kvh, j); }, out + off, scratch);
    }
  }, work > kParallelWork);
}

}  // namespace

void attention(const float* q, int64_t n, int64_t heads, int64_t start, const KvView& kv, float scale,
               float* out, int64_t window) {
  if (n >= kAttentionGemmTokens) {
    attention_gemm(q, n, heads, start, kv, scale, out, window);
    return;
  }
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
