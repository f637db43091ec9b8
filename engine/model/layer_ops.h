#pragma once
// The two halves of a decoder layer that every forward pass runs the same
// way (Model::forward_batch, the scoring pass, layer similarity, hidden
// states); only the attention between them differs.
#include <cstdint>
#include <vector>

#include "engine/model/config.h"
#include "engine/model/weights.h"

namespace mnemo::engine {

// x [n, hidden] -> h = rmsnorm(x), then q [n, heads*head_dim] and k, v
// [n, kv_heads*head_dim] projected (with Qwen2's biases), RoPE applied to q
// and k at positions pos.
void attention_inputs(const ModelConfig& c, const LayerWeights& L, const float* x, int64_t n, const int32_t* pos,
                      const std::vector<float>& inv_freq, float* h, float* q, float* k, float* v);

// x += o_proj(att); then x += down(silu(gate(rmsnorm(x))) * up(rmsnorm(x))).
// h [n, hidden], gate and up [n, intermediate] are scratch.
void attention_output_and_mlp(const ModelConfig& c, const LayerWeights& L, const float* att, int64_t n, float* x,
                              float* h, float* gate, float* up);

}  // namespace mnemo::engine
