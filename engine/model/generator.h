#pragma once
// Generates small random Llama-family models in exact Hugging Face layout
// (config.json, safetensors weights, tokenizer.json, tokenizer_config.json),
// for tests, benchmarks and the built-in demo model. Deterministic per seed.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "kernels/dtype.h"

namespace mnemo::engine {

struct GeneratorOptions {
  std::string arch = "llama";  // llama | qwen2 | mistral
  int64_t hidden = 256;
  int64_t layers = 4;
  int64_t heads = 8;
  int64_t kv_heads = 4;
  int64_t intermediate = 704;
  int64_t vocab = 2048;
  std::optional<int64_t> head_dim;  // written to config.json only when set
  kernels::DType dtype = kernels::DType::BF16;
  int shards = 1;
  bool tie = false;
  bool rope_llama3 = false;
  float rope_factor = 8.0f;
  int64_t rope_original_max = 8192;
  float rope_theta = 10000.0f;
  int64_t max_position = 4096;
  int64_t sliding_window = 0;  // Mistral only; 0 writes null (no window)
  uint64_t seed = 0;
};

// Throws std::invalid_argument on inconsistent options.
void generate_model(const GeneratorOptions& o, const std::filesystem::path& out);

}  // namespace mnemo::engine
