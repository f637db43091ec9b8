#pragma once
// A loaded Llama-family model and its CPU forward pass.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "engine/model/config.h"
#include "engine/model/kv_cache.h"
#include "engine/model/weights.h"

namespace mnemo::engine {

class Model {
 public:
  // Reads config.json and maps the weights (quantized when format says so); throws ModelError.
  static std::unique_ptr<Model> load(const std::filesystem::path& dir, Residency weights = Residency::Resident,
                                     WeightFormat format = WeightFormat::AsStored);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return store_->weights(); }
  const std::filesystem::path& dir() const { return dir_; }
  KvCache new_cache(int64_t capacity = 64) const;

  // Runs `tokens` at positions cache.length() onwards, appending their keys
  // and values to the cache. Returns logits [n, vocab] when all_logits, else
  // [1, vocab] for the last token.
  std::vector<float> forward(std::span<const int32_t> tokens, KvCache& cache, bool all_logits = false) const;

  // One step over several sequences: every weight matrix is applied once to
  // all of the step's tokens; attention runs per sequence over its own cache,
  // either a contiguous KvCache or a sequence of the paged cache whose
  // `tokens` were already appended there (the forward pass writes their K,V;
  // the caller commits). Paged sequences may be compacted: RoPE positions
  // count tokens, attention runs over each layer's slots.
  struct BatchItem {
    std::span<const int32_t> tokens;
    KvCache* cache = nullptr;
    bool all_logits = false;  // rows for every token, else the last only
    kv::KvCacheManager* paged = nullptr;
    kv::SeqId seq;
  };
  // Logits rows of all items, in item order: [sum of rows, vocab].
  std::vector<float> forward_batch(std::span<const BatchItem> items) const;

 private:
  Model() = default;
  std::filesystem::path dir_;
  ModelConfig config_;
  std::unique_ptr<WeightStore> store_;
  std::vector<float> inv_freq_;
};

}  // namespace mnemo::engine
