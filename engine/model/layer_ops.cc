#include "engine/model/layer_ops.h"

#include "engine/model/op_profile.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"

namespace mnemo::engine {

namespace cpu = kernels::cpu;

namespace {

uint64_t weight_bytes(const kernels::MatrixView& w) { return kernels::row_bytes(w.dtype, w.cols) * uint64_t(w.rows); }
uint64_t matmul_flops(const kernels::MatrixView& w, int64_t n) { return 2 * uint64_t(w.rows) * uint64_t(w.cols) * uint64_t(n); }
constexpr uint64_t f32 = sizeof(float);

}  // namespace

void attention_inputs(const ModelConfig& c, const LayerWeights& L, const float* x, int64_t n, const int32_t* pos,
                      const std::vector<float>& inv_freq, float* h, float* q, float* k, float* v) {
  const int64_t qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim, H = c.hidden_size;
  {
    prof::Scope s(prof::Op::RmsNorm, (2 * uint64_t(n) * H + H) * f32);
    cpu::rmsnorm(x, L.attn_norm.data(), c.rms_norm_eps, n, H, h);
  }
  {
    const kernels::MatrixView w[] = {L.q, L.k, L.v};
    float* const y[] = {q, k, v};
    prof::Scope s(prof::Op::QkvMatmul, weight_bytes(L.q) + weight_bytes(L.k) + weight_bytes(L.v),
                  matmul_flops(L.q, n) + matmul_flops(L.k, n) + matmul_flops(L.v, n));
    cpu::matmul_many(h, n, w, y);
    if (c.attention_bias) {
      cpu::add_bias(q, L.q_bias.data(), n, qd);
      cpu::add_bias(k, L.k_bias.data(), n, kvd);
      cpu::add_bias(v, L.v_bias.data(), n, kvd);
    }
  }
  prof::Scope s(prof::Op::Rope, 2 * uint64_t(n) * uint64_t(qd + kvd) * f32);
  cpu::rope(q, n, c.num_heads, c.head_dim, pos, inv_freq);
  cpu::rope(k, n, c.num_kv_heads, c.head_dim, pos, inv_freq);
}

void attention_output_and_mlp(const ModelConfig& c, const LayerWeights& L, const float* att, int64_t n, float* x,
                              float* h, float* gate, float* up) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  const uint64_t add_bytes = 3 * uint64_t(n * H) * f32;
  {
    prof::Scope s(prof::Op::OMatmul, weight_bytes(L.o), matmul_flops(L.o, n));
    cpu::matmul(att, n, L.o, h);
  }
  {
    prof::Scope s(prof::Op::ResidualAdd, add_bytes);
    cpu::add_inplace(x, h, n * H);
  }
  {
    prof::Scope s(prof::Op::RmsNorm, (2 * uint64_t(n) * H + H) * f32);
    cpu::rmsnorm(x, L.mlp_norm.data(), c.rms_norm_eps, n, H, h);
  }
  {
    const kernels::MatrixView w[] = {L.gate, L.up};
    float* const y[] = {gate, up};
    prof::Scope s(prof::Op::GateUpMatmul, weight_bytes(L.gate) + weight_bytes(L.up),
                  matmul_flops(L.gate, n) + matmul_flops(L.up, n));
    cpu::matmul_many(h, n, w, y);
  }
  {
    prof::Scope s(prof::Op::Silu, 3 * uint64_t(n * I) * f32);
    cpu::silu_mul(gate, up, n * I, gate);
  }
  {
    prof::Scope s(prof::Op::DownMatmul, weight_bytes(L.down), matmul_flops(L.down, n));
    cpu::matmul(gate, n, L.down, h);
  }
  prof::Scope s(prof::Op::ResidualAdd, add_bytes);
  cpu::add_inplace(x, h, n * H);
}

}  // namespace mnemo::engine
