// Mean-pooled hidden states: Model::forward_batch's per-layer numerics for
// one sequence on a private contiguous cache, stopped after `layer` layers,
// with no final norm and no LM head. The residual stream is summed over
// tokens in double, chunk by chunk, so the chunking moves the mean by f32
// rounding of the projections only.
//
// Safe to run beside the engine's step loop: the Model is only read, every
// buffer here is local, the kernels keep their scratch in thread_local
// storage, and each calling thread runs its own kernel thread team
// (kernels/cpu/parallel.h).
#include "engine/model/hidden_states.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cpu/matmul.h"
#include "engine/model/layer_ops.h"
#include "kernels/cpu/ops.h"

namespace mnemo::engine {

namespace cpu = kernels::cpu;

namespace detail {

// Tokens per forward: activations stay [chunk, intermediate] however long
// the input; only the cache grows with it (`layer` layers of K,V).
inline constexpr int64_t kHiddenChunk = 512;

// The implementation with the chunk size as a parameter (tests compare
// chunk sizes; the public function uses kHiddenChunk).
std::vector<float> mean_hidden_state_chunked(const Model& model, std::span<const int32_t> tokens, int64_t layer,
                                             int64_t chunk) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  if (tokens.empty()) throw std::invalid_argument("mean_hidden_state: no tokens");
  if (layer < 1 || layer > c.num_layers)
    throw std::invalid_argument("mean_hidden_state: layer " + std::to_string(layer) + " outside 1.." +
                                std::to_string(c.num_layers));
  if (chunk < 1) throw std::invalid_argument("mean_hidden_state: chunk must be positive");
  for (int32_t t : tokens)
    if (t < 0 || t >= c.vocab_size)
      throw std::invalid_argument("mean_hidden_state: token id " + std::to_string(t) +
                                  " outside the vocabulary of " + std::to_string(c.vocab_size));

  const int64_t H = c.hidden_size, hd = c.head_dim, nh = c.num_heads, nkv = c.num_kv_heads;
  const int64_t qd = nh * hd, kvd = nkv * hd, I = c.intermediate_size;
  const int64_t total = int64_t(tokens.size());
  const int64_t cn = std::min(chunk, total);
  const float scale = 1.0f / std::sqrt(float(hd));
  const std::vector<float> inv_freq = rope_inv_freq(c);

  // Exactly the layers that run, sized once: no doubling copies.
  KvCache cache(layer, nkv, hd, total);
  std::vector<float> x(size_t(cn * H)), h(size_t(cn * H)), q(size_t(cn * qd)), k(size_t(cn * kvd)),
      v(size_t(cn * kvd)), att(size_t(cn * qd)), gate(size_t(cn * I)), up(size_t(cn * I));
  std::vector<int32_t> pos(static_cast<size_t>(cn));
  std::vector<double> sum(static_cast<size_t>(H), 0.0);

  for (int64_t start = 0; start < total; start += cn) {
    const int64_t n = std::min(cn, total - start);
    for (int64_t j = 0; j < n; ++j) {
      pos[size_t(j)] = int32_t(start + j);
      cpu::row_to_f32(w.embed, tokens[size_t(start + j)], &x[size_t(j * H)]);
    }
    for (int64_t l = 0; l < layer; ++l) {
      const LayerWeights& L = w.layers[size_t(l)];
      attention_inputs(c, L, x.data(), n, pos.data(), inv_freq, h.data(), q.data(), k.data(), v.data());
      const cpu::KvView kv = cache.layer(l);
      cpu::kv_write(kv, start, n, k.data(), v.data());
      cpu::attention(q.data(), n, nh, start, kv, scale, att.data(), c.sliding_window);
      attention_output_and_mlp(c, L, att.data(), n, x.data(), h.data(), gate.data(), up.data());
    }
    cache.advance(n);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < H; ++i) sum[size_t(i)] += double(x[size_t(j * H + i)]);
  }

  std::vector<float> mean(static_cast<size_t>(H));
  for (int64_t i = 0; i < H; ++i) mean[size_t(i)] = float(sum[size_t(i)] / double(total));
  return mean;
}

}  // namespace detail

std::vector<float> mean_hidden_state(const Model& model, std::span<const int32_t> tokens, int64_t layer) {
  return detail::mean_hidden_state_chunked(model, tokens, layer, detail::kHiddenChunk);
}

}  // namespace mnemo::engine
