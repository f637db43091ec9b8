#include "engine/model/model.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <numeric>
#include <string>

#include "engine/model/model_error.h"
#include "kernels/cpu/ops.h"

namespace mnemo::engine {

namespace cpu = kernels::cpu;

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) throw ModelError(dir.string() + ": not a model directory");
  auto m = std::unique_ptr<Model>(new Model());
  m->dir_ = dir;
  m->config_ = load_config(dir / "config.json");
  m->store_ = WeightStore::open(dir, m->config_);
  m->inv_freq_ = rope_inv_freq(m->config_);
  spdlog::debug("loaded {} from {}: {} layers, hidden {}, {} MB of matrices", m->config_.architecture, dir.string(),
                m->config_.num_layers, m->config_.hidden_size, m->weights().matrix_bytes >> 20);
  return m;
}

KvCache Model::new_cache(int64_t capacity) const {
  return KvCache(config_.num_layers, config_.num_kv_heads, config_.head_dim, capacity);
}

std::vector<float> Model::forward(std::span<const int32_t> tokens, KvCache& cache, bool all_logits) const {
  const ModelConfig& c = config_;
  const ModelWeights& w = weights();
  const int64_t n = int64_t(tokens.size());
  if (n == 0) throw std::invalid_argument("forward: no tokens");
  for (int32_t t : tokens)
    if (t < 0 || t >= c.vocab_size)
      throw std::invalid_argument("forward: token id " + std::to_string(t) + " outside the vocabulary of " +
                                  std::to_string(c.vocab_size));
  const int64_t H = c.hidden_size, hd = c.head_dim, nh = c.num_heads, nkv = c.num_kv_heads;
  const int64_t qd = nh * hd, kvd = nkv * hd, I = c.intermediate_size;
  const int64_t start = cache.length();
  cache.reserve_more(n);

  std::vector<int32_t> pos(static_cast<size_t>(n));
  std::iota(pos.begin(), pos.end(), int32_t(start));
  std::vector<float> x(size_t(n * H)), h(size_t(n * H)), q(size_t(n * qd)), k(size_t(n * kvd)), v(size_t(n * kvd));
  std::vector<float> att(size_t(n * qd)), gate(size_t(n * I)), up(size_t(n * I));
  for (int64_t t = 0; t < n; ++t) cpu::row_to_f32(w.embed, tokens[size_t(t)], &x[size_t(t * H)]);

  const float scale = 1.0f / std::sqrt(float(hd));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = w.layers[size_t(l)];
    cpu::rmsnorm(x.data(), L.attn_norm.data(), c.rms_norm_eps, n, H, h.data());
    cpu::matmul(h.data(), n, L.q, q.data());
    cpu::matmul(h.data(), n, L.k, k.data());
    cpu::matmul(h.data(), n, L.v, v.data());
    if (c.attention_bias) {
      cpu::add_bias(q.data(), L.q_bias.data(), n, qd);
      cpu::add_bias(k.data(), L.k_bias.data(), n, kvd);
      cpu::add_bias(v.data(), L.v_bias.data(), n, kvd);
    }
    cpu::rope(q.data(), n, nh, hd, pos.data(), inv_freq_);
    cpu::rope(k.data(), n, nkv, hd, pos.data(), inv_freq_);
    const cpu::KvView kv = cache.layer(l);
    cpu::kv_write(kv, start, n, k.data(), v.data());
    cpu::attention(q.data(), n, nh, start, kv, scale, att.data(), c.sliding_window);
    cpu::matmul(att.data(), n, L.o, h.data());
    cpu::add_inplace(x.data(), h.data(), n * H);

    cpu::rmsnorm(x.data(), L.mlp_norm.data(), c.rms_norm_eps, n, H, h.data());
    cpu::matmul(h.data(), n, L.gate, gate.data());
    cpu::matmul(h.data(), n, L.up, up.data());
    cpu::silu_mul(gate.data(), up.data(), n * I, gate.data());
    cpu::matmul(gate.data(), n, L.down, h.data());
    cpu::add_inplace(x.data(), h.data(), n * H);
  }
  cache.advance(n);

  const int64_t rows = all_logits ? n : 1;
  const float* last = &x[size_t((n - rows) * H)];
  cpu::rmsnorm(last, w.final_norm.data(), c.rms_norm_eps, rows, H, h.data());
  std::vector<float> logits(size_t(rows * c.vocab_size));
  cpu::matmul(h.data(), rows, w.lm_head, logits.data());
  return logits;
}

}  // namespace mnemo::engine
