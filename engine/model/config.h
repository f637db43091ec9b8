#pragma once
// A model's config.json, reduced to what the forward pass needs.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::engine {

enum class Arch { Llama, Qwen2, Mistral };

struct RopeScaling {  // rope_scaling with rope_type/type "llama3"
  float factor = 8.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string architecture;  // as written, e.g. "LlamaForCausalLM"
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // given, or hidden_size / num_heads
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 2048;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (always on for Qwen2)
  int64_t sliding_window = 0;   // Mistral: attend to the last N positions; 0 = unlimited
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;
};

// Throws ModelError naming `source` and the field on any problem.
ModelConfig parse_config(std::string_view json_text, std::string_view source);
ModelConfig load_config(const std::filesystem::path& file);

// inv_freq[head_dim/2] for RoPE, with llama3 scaling applied when configured.
std::vector<float> rope_inv_freq(const ModelConfig& c);

}  // namespace mnemo::engine
