#include "engine/model/layer_ops.h"

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"

namespace mnemo::engine {

namespace cpu = kernels::cpu;

void attention_inputs(const ModelConfig& c, const LayerWeights& L, const float* x, int64_t n, const int32_t* pos,
                      const std::vector<float>& inv_freq, float* h, float* q, float* k, float* v) {
  const int64_t qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim;
  cpu::rmsnorm(x, L.attn_norm.data(), c.rms_norm_eps, n, c.hidden_size, h);
  const kernels::MatrixView w[] = {L.q, L.k, L.v};
  float* const y[] = {q, k, v};
  cpu::matmul_many(h, n, w, y);
  if (c.attention_bias) {
    cpu::add_bias(q, L.q_bias.data(), n, qd);
    cpu::add_bias(k, L.k_bias.data(), n, kvd);
    cpu::add_bias(v, L.v_bias.data(), n, kvd);
  }
  cpu::rope(q, n, c.num_heads, c.head_dim, pos, inv_freq);
  cpu::rope(k, n, c.num_kv_heads, c.head_dim, pos, inv_freq);
}

void attention_output_and_mlp(const ModelConfig& c, const LayerWeights& L, const float* att, int64_t n, float* x,
                              float* h, float* gate, float* up) {
  const int64_t H = c.hidden_size;
  cpu::matmul(att, n, L.o, h);
  cpu::add_inplace(x, h, n * H);
  cpu::rmsnorm(x, L.mlp_norm.data(), c.rms_norm_eps, n, H, h);
  const kernels::MatrixView w[] = {L.gate, L.up};
  float* const y[] = {gate, up};
  cpu::matmul_many(h, n, w, y);
  cpu::silu_mul(gate, up, n * c.intermediate_size, gate);
  cpu::matmul(gate, n, L.down, h);
  cpu::add_inplace(x, h, n * H);
}

}  // namespace mnemo::engine
