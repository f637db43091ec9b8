#include "engine/model/model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <numeric>
#include <string>

#include "engine/model/model_error.h"
#include "engine/model/paged_attention.h"
#include "engine/model/layer_ops.h"
#include "engine/model/op_profile.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace mnemo::engine {

namespace cpu = kernels::cpu;

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir, Residency weights, WeightFormat format) {
  if (!std::filesystem::is_directory(dir)) throw ModelError(dir.string() + ": not a model directory");
  auto m = std::unique_ptr<Model>(new Model());
  m->dir_ = dir;
  m->config_ = load_config(dir / "config.json");
  m->store_ = WeightStore::open(dir, m->config_, weights, format);
  m->inv_freq_ = rope_inv_freq(m->config_);
  spdlog::debug("loaded {} from {}: {} layers, hidden {}, {} MB of matrices", m->config_.architecture, dir.string(),
                m->config_.num_layers, m->config_.hidden_size, m->weights().matrix_bytes >> 20);
  return m;
}

KvCache Model::new_cache(int64_t capacity) const {
  return KvCache(config_.num_layers, config_.num_kv_heads, config_.head_dim, capacity);
}

std::vector<float> Model::forward(std::span<const int32_t> tokens, KvCache& cache, bool all_logits) const {
  BatchItem item;
  item.tokens = tokens;
  item.cache = &cache;
  item.all_logits = all_logits;
  return forward_batch(std::span(&item, 1));
}

std::vector<float> Model::forward_batch(std::span<const BatchItem> items) const {
  const ModelConfig& c = config_;
  const ModelWeights& w = weights();
  const int64_t H = c.hidden_size, hd = c.head_dim, nh = c.num_heads, nkv = c.num_kv_heads;
  const int64_t qd = nh * hd, kvd = nkv * hd, I = c.intermediate_size;

  // Token offsets of each item in the step's activations, and positions.
  std::vector<int64_t> offset(items.size() + 1, 0);
  for (size_t b = 0; b < items.size(); ++b) {
    const auto& it = items[b];
    if (it.tokens.empty()) throw std::invalid_argument("forward: an item has no tokens");
    for (int32_t t : it.tokens)
      if (t < 0 || t >= c.vocab_size)
        throw std::invalid_argument("forward: token id " + std::to_string(t) + " outside the vocabulary of " +
                                    std::to_string(c.vocab_size));
    offset[b + 1] = offset[b] + int64_t(it.tokens.size());
  }
  const int64_t n = offset.back();
  if (n == 0) throw std::invalid_argument("forward: no tokens");
  // start: position of each item's first new token (the RoPE position).
  std::vector<int64_t> start(items.size());
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (size_t b = 0; b < items.size(); ++b) {
    const BatchItem& it = items[b];
    const int64_t m = int64_t(it.tokens.size());
    if ((it.cache == nullptr) == (it.paged == nullptr))
      throw std::invalid_argument("forward: each item needs exactly one of a cache or a paged sequence");
    if (it.cache) {
      start[b] = it.cache->length();
      it.cache->reserve_more(m);
    } else {
      start[b] = int64_t(it.paged->tokens(it.seq).size()) - m;
      if (start[b] < 0 || it.paged->committed(it.seq) != start[b])
        throw std::invalid_argument("forward: the paged sequence must hold exactly the item's tokens uncommitted");
    }
    for (int64_t j = 0; j < m; ++j) pos[size_t(offset[b] + j)] = int32_t(start[b] + j);
  }

  const int64_t nb = int64_t(items.size());
  const cpu::TeamBurst burst;  // the team stays awake between the pass's steps
  prof::set_phase(n == nb ? prof::Phase::Decode : prof::Phase::Prefill);
  std::vector<float> x(size_t(n * H)), h(size_t(n * H)), q(size_t(n * qd)), k(size_t(n * kvd)), v(size_t(n * kvd));
  std::vector<float> att(size_t(n * qd)), gate(size_t(n * I)), up(size_t(n * I));
  {
    prof::Scope s(prof::Op::Embed, uint64_t(n) * (kernels::row_bytes(w.embed.dtype, H) + H * sizeof(float)));
    for (size_t b = 0; b < items.size(); ++b)
      for (int64_t j = 0; j < offset[b + 1] - offset[b]; ++j)
        cpu::row_to_f32(w.embed, items[b].tokens[size_t(j)], &x[size_t((offset[b] + j) * H)]);
  }

  const float scale = 1.0f / std::sqrt(float(hd));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = w.layers[size_t(l)];
    attention_inputs(c, L, x.data(), n, pos.data(), inv_freq_, h.data(), q.data(), k.data(), v.data());
    // Several sequences: taken one at a time by the team's threads (attention
    // inside runs serially, a nested step does); a single sequence
    // parallelises inside. (The profile then sums their attention time over
    // the threads.)
    std::atomic<int64_t> next{0};
    cpu::run_on_team_dynamic([&](int, int) {
      for (int64_t b; (b = next.fetch_add(1, std::memory_order_relaxed)) < nb;) {
        const int64_t o = offset[size_t(b)], m = offset[size_t(b) + 1] - o;
        const BatchItem& it = items[size_t(b)];
        // Bytes: the new rows written; then every K,V row of the sequence read.
        const uint64_t row = uint64_t(m * kvd) * 2;
        if (it.cache) {
          const cpu::KvView kv = it.cache->layer(l);
          {
            prof::Scope s(prof::Op::KvWrite, row * 2 * sizeof(float));
            cpu::kv_write(kv, start[size_t(b)], m, &k[size_t(o * kvd)], &v[size_t(o * kvd)]);
          }
          prof::Scope s(prof::Op::Attention, uint64_t(start[size_t(b)] + m) * uint64_t(kvd) * 2 * sizeof(float));
          cpu::attention(&q[size_t(o * qd)], m, nh, start[size_t(b)], kv, scale, &att[size_t(o * qd)],
                         c.sliding_window);
        } else {
          const uint64_t el = kernels::kv_dtype_size(it.paged->dtype());
          {
            prof::Scope s(prof::Op::KvWrite, row * (sizeof(float) + el));
            it.paged->write(it.seq, l, m, &k[size_t(o * kvd)], &v[size_t(o * kvd)]);
          }
          prof::Scope s(prof::Op::Attention);
          if (prof::enabled()) s.add(uint64_t(it.paged->layer_blocks(it.seq, l).length) * uint64_t(kvd) * 2 * el);
          paged_layer_attention(*it.paged, it.seq, l, &q[size_t(o * qd)], m, nh, scale, &att[size_t(o * qd)],
                                c.sliding_window);
        }
      }
    }, nb > 1);
    attention_output_and_mlp(c, L, att.data(), n, x.data(), h.data(), gate.data(), up.data());
  }
  for (size_t b = 0; b < items.size(); ++b)
    if (items[b].cache) items[b].cache->advance(offset[b + 1] - offset[b]);

  // Gather the rows whose logits are wanted, then one LM-head GEMM.
  std::vector<int64_t> rows;
  for (size_t b = 0; b < items.size(); ++b)
    for (int64_t r = items[b].all_logits ? offset[b] : offset[b + 1] - 1; r < offset[b + 1]; ++r) rows.push_back(r);
  const int64_t nr = int64_t(rows.size());
  std::vector<float> sel(size_t(nr * H));
  for (int64_t r = 0; r < nr; ++r) std::copy_n(&x[size_t(rows[size_t(r)] * H)], H, &sel[size_t(r * H)]);
  {
    prof::Scope s(prof::Op::FinalNorm, (2 * uint64_t(nr) * H + H) * sizeof(float));
    cpu::rmsnorm(sel.data(), w.final_norm.data(), c.rms_norm_eps, nr, H, h.data());
  }
  std::vector<float> logits(size_t(nr * c.vocab_size));
  prof::Scope s(prof::Op::LmHead, kernels::row_bytes(w.lm_head.dtype, w.lm_head.cols) * uint64_t(w.lm_head.rows),
                2 * uint64_t(nr) * uint64_t(w.lm_head.rows) * uint64_t(w.lm_head.cols));
  cpu::matmul(h.data(), nr, w.lm_head, logits.data());
  return logits;
}

}  // namespace mnemo::engine
