// The scoring pass: the query tokens run through every layer over a copy of
// the sequence's cached K,V (their own K,V in a scratch buffer), so the
// cache is only read. Per KV group, q.K^T is one GEMM over the cached slots
// and the queries' own keys; the cached part of each row is softmaxed on its
// own (the score) and then rescaled into the forward softmax over cached and
// own keys, so every logit is exponentiated once.
#include "engine/model/attention_scores.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/cpu/kv_rows.h"
#include "kernels/cpu/matmul.h"
#include "engine/model/layer_ops.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace mnemo::engine {

namespace cpu = kernels::cpu;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void check_ids(const ModelConfig& c, std::span<const int32_t> ids, const char* what) {
  for (int32_t t : ids)
    if (t < 0 || t >= c.vocab_size)
      throw std::invalid_argument(std::string(what) + ": token id " + std::to_string(t) +
                                  " outside the vocabulary of " + std::to_string(c.vocab_size));
}

// One KV head of one layer, contiguous: rows [0, len) the cached slots, rows
// [len, len + m) the queries' own keys. vt is V transposed ([d][len + m]) so
// that weights . V is a GEMM against a [d, len + m] matrix.
struct HeadKv {
  std::vector<float> k, vt;
};

void gather_head(const kv::KvCacheManager& cache, kv::SeqId seq, int64_t layer, int64_t head, int64_t len,
                 const float* own_k, const float* own_v, int64_t m, int64_t kv_stride, bool want_v, HeadKv& out) {
  const int64_t bs = cache.config().block_size, d = cache.config().head_dim, L = len + m;
  const kv::LayerBlocks lb = cache.layer_blocks(seq, layer);
  const kernels::KvDType dtype = cache.dtype();
  const int64_t head_offset = head * bs * d * cache.config().elem_bytes();
  out.k.resize(size_t(L * d));
  if (want_v) out.vt.resize(size_t(d * L));
  std::vector<float> vb(size_t(bs * d));  // one block's values of this head, as f32
  for (int64_t first = 0; first < len; first += bs) {
    const int32_t b = lb.blocks[size_t(first / bs)];
    const int64_t rows = std::min(bs, len - first);
    cpu::kv_row_to_f32(dtype, static_cast<const std::byte*>(cache.k_block(layer, b)) + head_offset, rows * d,
                       &out.k[size_t(first * d)]);
    if (!want_v) continue;
    cpu::kv_row_to_f32(dtype, static_cast<const std::byte*>(cache.v_block(layer, b)) + head_offset, rows * d, vb.data());
    // Row i of vt gets a run of `rows` values; the block is read from L1.
    for (int64_t i = 0; i < d; ++i)
      for (int64_t r = 0; r < rows; ++r) out.vt[size_t(i * L + first + r)] = vb[size_t(r * d + i)];
  }
  for (int64_t t = 0; t < m; ++t) std::copy_n(own_k + t * kv_stride + head * d, d, &out.k[size_t((len + t) * d)]);
  if (want_v)
    for (int64_t i = 0; i < d; ++i)
      for (int64_t t = 0; t < m; ++t) out.vt[size_t(i * L + len + t)] = own_v[t * kv_stride + head * d + i];
}

}  // namespace

SlotScores score_slots(const Model& model, const kv::KvCacheManager& cache, kv::SeqId seq,
                       std::span<const int32_t> queries, ScoreReduce reduce) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  if (queries.empty()) throw std::invalid_argument("score_slots: no query tokens");
  check_ids(c, queries, "score_slots");
  const kv::KvConfig& kc = cache.config();
  if (kc.layers != c.num_layers || kc.kv_heads != c.num_kv_heads || kc.head_dim != c.head_dim)
    throw std::invalid_argument("score_slots: the cache's shapes are not the model's");
  const int64_t P0 = int64_t(cache.tokens(seq).size());
  if (cache.committed(seq) != P0)
    throw std::invalid_argument("score_slots: the sequence has appended tokens whose K,V are not written");

  const int64_t H = c.hidden_size, d = c.head_dim, nh = c.num_heads, nkv = c.num_kv_heads;
  const int64_t qd = nh * d, kvd = nkv * d, I = c.intermediate_size, group = nh / nkv;
  const int64_t m = int64_t(queries.size());
  const float scale = 1.0f / std::sqrt(float(d));
  // As in Model::forward_batch: the model's sliding window holds while slot
  // index equals position, i.e. until the sequence is compacted. It limits
  // both what the queries' hidden states see and which slots they score.
  const int64_t window = cache.compacted(seq) ? 0 : c.sliding_window;
  const std::vector<float> inv_freq = rope_inv_freq(c);

  std::vector<int32_t> pos(static_cast<size_t>(m));
  for (int64_t t = 0; t < m; ++t) pos[size_t(t)] = int32_t(P0 + t);
  std::vector<float> x(size_t(m * H)), h(size_t(m * H)), q(size_t(m * qd)), k(size_t(m * kvd)), v(size_t(m * kvd));
  std::vector<float> att(size_t(m * qd)), gate(size_t(m * I)), up(size_t(m * I));
  std::vector<float> qh(size_t(m * d)), oh(size_t(m * d));
  std::vector<float> alpha(static_cast<size_t>(m)), inv_zc(static_cast<size_t>(m));  // per query row
  std::vector<float> scores;  // [m][len + m] logits, then weights
  HeadKv hk;
  for (int64_t t = 0; t < m; ++t) cpu::row_to_f32(w.embed, queries[size_t(t)], &x[size_t(t * H)]);

  SlotScores out(size_t(c.num_layers));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& LW = w.layers[size_t(l)];
    const bool last = l + 1 == c.num_layers;  // only its queries matter: no attention output, no MLP
    attention_inputs(c, LW, x.data(), m, pos.data(), inv_freq, h.data(), q.data(), k.data(), v.data());

    const int64_t len = cache.length(seq, l), L = len + m;
    out[size_t(l)].assign(size_t(nkv), std::vector<float>(size_t(len), 0.0f));
    scores.resize(size_t(m * L));
    for (int64_t g = 0; g < nkv; ++g) {
      gather_head(cache, seq, l, g, len, k.data(), v.data(), m, kvd, !last, hk);
      const kv::Hole hole = cache.hole(seq, l, g);
      const int64_t hole_begin = std::clamp<int64_t>(hole.begin, 0, len);
      const int64_t hole_end = std::clamp<int64_t>(hole.end, hole_begin, len);
      // A hole's slots may hold anything (never written, NaN even): its
      // weights are 0, and 0 * NaN would still poison weights . V.
      std::fill(hk.k.begin() + hole_begin * d, hk.k.begin() + hole_end * d, 0.0f);
      if (!last)
        for (int64_t i = 0; i < d; ++i)
          std::fill(hk.vt.begin() + i * L + hole_begin, hk.vt.begin() + i * L + hole_end, 0.0f);
      const kernels::MatrixView kview{hk.k.data(), kernels::DType::F32, L, d};
      const kernels::MatrixView vtview{hk.vt.data(), kernels::DType::F32, d, L};
      std::vector<float>& acc = out[size_t(l)][size_t(g)];
      for (int64_t head = g * group; head < (g + 1) * group; ++head) {
        for (int64_t t = 0; t < m; ++t) std::memcpy(&qh[size_t(t * d)], &q[size_t((t * nh + head) * d)], size_t(d) * 4);
        cpu::matmul(qh.data(), m, kview, scores.data());
        if (reduce == ScoreReduce::MeanLogit) {
          // Before the rows become weights: the logits of visible slots, averaged.
          const float w_mean = scale / float(m * group);
          float* a = acc.data();
          for (int64_t t = 0; t < m; ++t) {
            const float* row = &scores[size_t(t * L)];
            const int64_t first = window > 0 ? std::min(len, std::max<int64_t>(0, P0 + t - window + 1)) : 0;
            for (int64_t j = first; j < len; ++j) a[j] += row[j] * w_mean;
          }
        }
        cpu::parallel_for(m, [&](int64_t t0, int64_t t1) {
          for (int64_t t = t0; t < t1; ++t) {
            float* row = &scores[size_t(t * L)];
            // Query t sits at position P0 + t; slot j (uncompacted: position j)
            // is visible unless in the hole or, with a window, too old: the
            // visible slots are two runs, [first, hole begin) and [hole end, len).
            const int64_t first = window > 0 ? std::min(len, std::max<int64_t>(0, P0 + t - window + 1)) : 0;
            const int64_t runs[2][2] = {{first, std::max(first, hole_begin)}, {std::max(first, hole_end), len}};
            std::fill(row, row + first, 0.0f);
            std::fill(row + runs[0][1], row + runs[1][0], 0.0f);
            float mc = kNegInf;
            for (const auto& r : runs) {
#pragma omp simd reduction(max : mc)
              for (int64_t j = r[0]; j < r[1]; ++j) {
                row[j] *= scale;
                mc = std::max(mc, row[j]);
              }
            }
            // Softmax over the cached slots alone (the score) is row[j] / zc;
            // the division is folded into the passes below.
            float zc = 0;
            for (const auto& r : runs)
              for (int64_t j = r[0]; j < r[1]; ++j) zc += (row[j] = std::exp(row[j] - mc));
            inv_zc[size_t(t)] = zc > 0 ? 1.0f / zc : 0.0f;
            if (last) continue;
            // The forward softmax also covers the queries' own keys t' <= t
            // (within the window): a cached slot's weight is row[j] e^(mc - M) / Z.
            const int64_t own_first = window > 0 ? std::max<int64_t>(0, t - window + 1) : 0;
            float* own = row + len;
            float mo = kNegInf;
            for (int64_t u = own_first; u <= t; ++u) mo = std::max(mo, own[u] *= scale);
            const float M = std::max(mc, mo);
            const float ec = zc > 0 ? std::exp(mc - M) : 0.0f;
            float z = zc * ec;
            for (int64_t u = 0; u < m; ++u) {
              own[u] = u >= own_first && u <= t ? std::exp(own[u] - M) : 0.0f;
              z += own[u];
            }
            const float inv = 1.0f / z;
            for (int64_t u = own_first; u <= t; ++u) own[u] *= inv;
            alpha[size_t(t)] = ec * inv;
          }
        }, m * L > (1 << 16));
        // Reduce the scores over query positions (and, across the loop, heads).
        cpu::parallel_for((len + 255) / 256, [&](int64_t b0, int64_t b1) {
          for (int64_t j0 = b0 * 256; j0 < b1 * 256; j0 += 256) {
            const int64_t j1 = std::min(len, j0 + 256);
            float* a = acc.data();
            for (int64_t t = 0; t < m; ++t) {
              const float* row = &scores[size_t(t * L)];
              const float inv = inv_zc[size_t(t)];
              if (reduce == ScoreReduce::Max)
                for (int64_t j = j0; j < j1; ++j) a[j] = std::max(a[j], row[j] * inv);
              else if (reduce == ScoreReduce::Sum)
                for (int64_t j = j0; j < j1; ++j) a[j] += row[j] * inv;
            }
          }
        }, m * len > (1 << 16));
        if (last) continue;
        cpu::parallel_for(m, [&](int64_t t0, int64_t t1) {
          for (int64_t t = t0; t < t1; ++t) {
            float* row = &scores[size_t(t * L)];
            const float a = alpha[size_t(t)];
            for (int64_t j = 0; j < len; ++j) row[j] *= a;
          }
        }, m * len > (1 << 16));
        cpu::matmul(scores.data(), m, vtview, oh.data());
        for (int64_t t = 0; t < m; ++t) std::memcpy(&att[size_t((t * nh + head) * d)], &oh[size_t(t * d)], size_t(d) * 4);
      }
      if (reduce == ScoreReduce::MeanLogit) {
        // Mean logits -> weights over the head's readable slots.
        std::fill(acc.begin() + hole_begin, acc.begin() + hole_end, kNegInf);
        cpu::softmax(acc.data(), len);
      }
      std::fill(acc.begin() + hole_begin, acc.begin() + hole_end, kNegInf);
    }
    if (last) break;
    attention_output_and_mlp(c, LW, att.data(), m, x.data(), h.data(), gate.data(), up.data());
  }
  return out;
}

}  // namespace mnemo::engine
