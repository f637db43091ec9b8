#pragma once
// The tensors of a Llama-family checkpoint, mapped from its safetensors
// files and checked against the config. Matrices stay in their stored dtype
// or are quantized to Q8_0 at load (WeightFormat); the small vectors (norms,
// biases) are converted to f32 once.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/model/config.h"
#include "engine/model/mapped_file.h"
#include "kernels/cpu/matmul.h"

namespace mnemo::engine {

struct LayerWeights {
  kernels::MatrixView q, k, v, o;       // [heads*hd, H], [kv*hd, H] x2, [H, heads*hd]
  kernels::MatrixView gate, up, down;   // [I, H], [I, H], [H, I]
  std::vector<float> attn_norm, mlp_norm;  // [H]
  std::vector<float> q_bias, k_bias, v_bias;  // [heads*hd], [kv*hd], [kv*hd] or empty
};

struct ModelWeights {
  kernels::MatrixView embed;    // [V, H]
  kernels::MatrixView lm_head;  // [V, H]; the embedding when tied
  std::vector<float> final_norm;  // [H]
  std::vector<LayerWeights> layers;
  uint64_t matrix_bytes = 0;  // bytes of all matrices, as held (after any quantization)
};

// AsStored serves the checkpoint's dtype. Q8_0 quantizes every matrix whose
// rows are whole 32-blocks (all of a Llama's: the linear layers, the LM head
// and the embedding, which a lookup dequantizes one row at a time and a tied
// LM head shares) into anonymous huge-page memory; the files are then
// released, so the model holds only the Q8_0 bytes. A matrix whose cols is
// not a multiple of 32 stays as stored (logged) and keeps its file mapped.
enum class WeightFormat { AsStored, Q8_0 };

// "auto" (as stored) or "q8_0"; nullopt for anything else.
std::optional<WeightFormat> parse_weight_format(std::string_view s);

class WeightStore {
 public:
  // Maps model.safetensors, or the shards of model.safetensors.index.json.
  // Throws ModelError naming the file and tensor on any inconsistency.
  static std::unique_ptr<WeightStore> open(const std::filesystem::path& dir, const ModelConfig& config,
                                           Residency residency = Residency::Resident,
                                           WeightFormat format = WeightFormat::AsStored);

  const ModelWeights& weights() const { return weights_; }
  const std::vector<MappedFile>& files() const { return files_; }  // empty once all matrices are quantized

 private:
  std::vector<MappedFile> files_;
  std::vector<std::unique_ptr<uint8_t[]>> realigned_;  // copies of misaligned tensors
  std::shared_ptr<void> quantized_;                     // the Q8_0 matrices, one mapping
  ModelWeights weights_;
  friend class WeightLoader;
};

}  // namespace mnemo::engine
