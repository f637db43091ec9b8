// sigma_l of EpiCache's layer-wise budgets: run `text` twice, once with
// every layer attending causally to all earlier tokens and once with every
// layer restricted to sinks + a recent window, and compare the keys each
// layer produces. A layer whose keys barely move does not need distant
// tokens and can be given a smaller share of the budget.
//
// Keys are compared after RoPE (both runs rotate by the same positions, so
// the cosine is the same as before RoPE up to rounding). Layer 0's keys come
// straight from the embeddings, before any attention: they are identical in
// both runs and sigma_0 is 1 (up to rounding of the cosine).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/model/attention_scores.h"
#include "kernels/cpu/matmul.h"
#include "engine/model/layer_ops.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace mnemo::engine {

namespace cpu = kernels::cpu;

namespace {

// Which keys a query may read: causal, the model's own sliding window (part
// of the model in both runs), and in the restricted run sinks + window.
struct Visibility {
  int64_t model_window = 0;  // 0: none
  bool restricted = false;
  int64_t sinks = 0, window = 0;
  bool operator()(int64_t p, int64_t j) const {
    if (j > p) return false;
    if (model_window > 0 && p - j >= model_window) return false;
    return !restricted || j < sinks || p - j < window;
  }
};

// Post-RoPE keys [n][kv_heads * head_dim] of every layer for `text` at
// positions 0.., with attention limited to what `visible` allows.
std::vector<std::vector<float>> keys_of(const Model& model, std::span<const int32_t> text, const Visibility& visible) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int64_t n = int64_t(text.size()), H = c.hidden_size, d = c.head_dim, nh = c.num_heads, nkv = c.num_kv_heads;
  const int64_t qd = nh * d, kvd = nkv * d, I = c.intermediate_size, group = nh / nkv;
  const float scale = 1.0f / std::sqrt(float(d));
  const std::vector<float> inv_freq = rope_inv_freq(c);
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) pos[size_t(t)] = int32_t(t);
  std::vector<float> x(size_t(n * H)), h(size_t(n * H)), q(size_t(n * qd)), v(size_t(n * kvd));
  std::vector<float> att(size_t(n * qd)), gate(size_t(n * I)), up(size_t(n * I));
  std::vector<float> kh(size_t(n * d)), vt(size_t(d * n)), qh(size_t(n * d)), oh(size_t(n * d)), s(size_t(n * n));
  for (int64_t t = 0; t < n; ++t) cpu::row_to_f32(w.embed, text[size_t(t)], &x[size_t(t * H)]);

  std::vector<std::vector<float>> keys(size_t(c.num_layers), std::vector<float>(size_t(n * kvd)));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& LW = w.layers[size_t(l)];
    std::vector<float>& k = keys[size_t(l)];
    attention_inputs(c, LW, x.data(), n, pos.data(), inv_freq, h.data(), q.data(), k.data(), v.data());
    if (l + 1 == c.num_layers) break;  // its keys are all that is compared

    for (int64_t g = 0; g < nkv; ++g) {
      for (int64_t t = 0; t < n; ++t) {
        std::memcpy(&kh[size_t(t * d)], &k[size_t(t * kvd + g * d)], size_t(d) * 4);
        for (int64_t i = 0; i < d; ++i) vt[size_t(i * n + t)] = v[size_t(t * kvd + g * d + i)];
      }
      const kernels::MatrixView kview{kh.data(), kernels::DType::F32, n, d};
      const kernels::MatrixView vtview{vt.data(), kernels::DType::F32, d, n};
      for (int64_t head = g * group; head < (g + 1) * group; ++head) {
        for (int64_t t = 0; t < n; ++t) std::memcpy(&qh[size_t(t * d)], &q[size_t((t * nh + head) * d)], size_t(d) * 4);
        cpu::matmul(qh.data(), n, kview, s.data());
        cpu::parallel_for(n, [&](int64_t t0, int64_t t1) {
          for (int64_t t = t0; t < t1; ++t) {
            float* row = &s[size_t(t * n)];
            for (int64_t j = 0; j < n; ++j)
              row[j] = visible(t, j) ? row[j] * scale : -std::numeric_limits<float>::infinity();
            cpu::softmax(row, n);
          }
        }, n * n > (1 << 16));
        cpu::matmul(s.data(), n, vtview, oh.data());
        for (int64_t t = 0; t < n; ++t) std::memcpy(&att[size_t((t * nh + head) * d)], &oh[size_t(t * d)], size_t(d) * 4);
      }
    }
    attention_output_and_mlp(c, LW, att.data(), n, x.data(), h.data(), gate.data(), up.data());
  }
  return keys;
}

}  // namespace

std::vector<double> layer_key_similarity(const Model& model, std::span<const int32_t> text, int64_t sinks,
                                         int64_t window) {
  const ModelConfig& c = model.config();
  if (text.empty()) throw std::invalid_argument("layer_key_similarity: no text");
  for (int32_t t : text)
    if (t < 0 || t >= c.vocab_size)
      throw std::invalid_argument("layer_key_similarity: token id " + std::to_string(t) +
                                  " outside the vocabulary of " + std::to_string(c.vocab_size));
  // A window of at least 1 lets every token see itself: no softmax is empty.
  if (sinks < 0 || window < 1)
    throw std::invalid_argument("layer_key_similarity: needs sinks >= 0 and window >= 1");

  const auto full = keys_of(model, text, Visibility{c.sliding_window, false, 0, 0});
  const auto limited = keys_of(model, text, Visibility{c.sliding_window, true, sinks, window});
  const int64_t n = int64_t(text.size()), d = c.head_dim, nkv = c.num_kv_heads;
  std::vector<double> sigma(size_t(c.num_layers));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    double total = 0;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t g = 0; g < nkv; ++g) {
        const float* a = &full[size_t(l)][size_t((t * nkv + g) * d)];
        const float* b = &limited[size_t(l)][size_t((t * nkv + g) * d)];
        double ab = 0, aa = 0, bb = 0;
        for (int64_t i = 0; i < d; ++i) {
          ab += double(a[i]) * b[i];
          aa += double(a[i]) * a[i];
          bb += double(b[i]) * b[i];
        }
        // Two zero keys are the same key; one zero key shares no direction.
        total += aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
      }
    sigma[size_t(l)] = total / double(n * nkv);
  }
  return sigma;
}

}  // namespace mnemo::engine
