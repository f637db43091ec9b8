#pragma once
// Layer sensitivities (sigma_l) for layer budgets, measured once per model on
// a calibration text and kept beside the model, so a daemon start does not
// pay for them again.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/model/model.h"

namespace mnemo::memory::compress {

struct CalibrationOptions {
  int64_t text_tokens = 1024;  // calibration sequence length
  int64_t sinks = 128;         // the sink + recent mask sigma compares full attention against,
  int64_t window = 128;        //   as StreamingLLM keeps them
  // Where the result is stored; default <model dir>/mnemo_layer_sensitivity.json.
  std::optional<std::filesystem::path> file;
};

class LayerBudgetCalibration {
 public:
  enum class Source {
    Loaded,    // read back from the file: its fingerprint matched
    Computed,  // measured now and stored in the file
    Memory,    // measured now (or earlier in this process); the file could not be written
  };

  // Loads sigma when the stored fingerprint (config.json, the weight files'
  // names, sizes and modification times, the calibration parameters and
  // tokens) matches; otherwise measures it with layer_key_similarity and
  // stores it. An unwritable location keeps it in memory, with a warning
  // saying why. Throws std::invalid_argument for text_tokens < 2 or negative
  // sinks/window.
  LayerBudgetCalibration(const engine::Model& model, CalibrationOptions options = {});

  const std::vector<double>& sigma() const { return sigma_; }
  Source source() const { return source_; }
  const std::string& fingerprint() const { return fingerprint_; }
  const std::filesystem::path& file() const { return file_; }
  // layer_budgets(sigma(), per_layer, alpha, floor).
  std::vector<int64_t> budgets(int64_t per_layer, double alpha = 2.0, std::optional<int64_t> floor = std::nullopt) const;

  // The calibration sequence: the model's tokenizer (tokenizer.json in its
  // directory) on the bundled corpus, repeated as needed; without a usable
  // tokenizer, a fixed pseudo-random sequence over the vocabulary.
  static std::vector<int32_t> calibration_tokens(const engine::Model& model, int64_t n);

 private:
  std::vector<double> sigma_;
  Source source_ = Source::Computed;
  std::string fingerprint_;
  std::filesystem::path file_;
};

}  // namespace mnemo::memory::compress
