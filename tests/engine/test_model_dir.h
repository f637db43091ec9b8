#pragma once
// Builds tiny model directories by hand (no tokenizer), for load and forward
// tests that must not depend on the generator.
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <cstring>
#include <unistd.h>
#include <vector>

#include "engine/model/safetensors_writer.h"

namespace mnemo::engine::testing {

struct TinyModel {
  nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 32}, {"num_hidden_layers", 2},
                           {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"intermediate_size", 48},
                           {"vocab_size", 40}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}};
  std::map<std::string, TensorData> tensors;

  TinyModel() {
    const int64_t H = 32, kv = 16, I = 48, V = 40;
    add("model.embed_tokens.weight", {V, H});
    add("lm_head.weight", {V, H});
    add("model.norm.weight", {H});
    for (int l = 0; l < 2; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      add(p + "input_layernorm.weight", {H});
      add(p + "post_attention_layernorm.weight", {H});
      add(p + "self_attn.q_proj.weight", {H, H});
      add(p + "self_attn.k_proj.weight", {kv, H});
      add(p + "self_attn.v_proj.weight", {kv, H});
      add(p + "self_attn.o_proj.weight", {H, H});
      add(p + "mlp.gate_proj.weight", {I, H});
      add(p + "mlp.up_proj.weight", {I, H});
      add(p + "mlp.down_proj.weight", {H, I});
    }
  }

  void add(const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::mt19937 rng(uint32_t(std::hash<std::string>{}(name)));
    std::normal_distribution<float> dist(0.0f, 0.3f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng) + (shape.size() == 1 ? 1.0f : 0.0f);
    TensorData t{name, kernels::DType::F32, std::move(shape), std::vector<uint8_t>(v.size() * 4)};
    std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
    tensors[name] = std::move(t);
  }

  void write(const std::filesystem::path& dir) const {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "config.json") << config.dump();
    std::vector<const TensorData*> all;
    for (const auto& [_, t] : tensors) all.push_back(&t);
    write_safetensors(dir / "model.safetensors", all);
  }
};

// n token ids below `vocab`, the same for the same seed.
inline std::vector<int32_t> random_tokens(size_t n, uint32_t seed, int64_t vocab) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % uint32_t(vocab));
  return t;
}

inline std::filesystem::path fresh_dir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("mnemo_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d;
}

}  // namespace mnemo::engine::testing
