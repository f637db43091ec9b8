#pragma once
// The mnemo subcommands; each returns the process exit code.
#include <filesystem>
#include <string>
#include <vector>

#include "engine/model/mapped_file.h"
#include "engine/model/weights.h"

namespace mnemo::cli {

class Flags;

int cmd_model_new(const std::vector<std::string>& args);
int cmd_run(const std::vector<std::string>& args);
int cmd_logits(const std::vector<std::string>& args);
int cmd_tokenize(const std::vector<std::string>& args);
int cmd_detokenize(const std::vector<std::string>& args);

// --model and --threads, shared by the commands that load a model.
void add_model_flags(Flags& f);
// The --model directory, or the built-in default model (generated on first use).
std::filesystem::path model_dir(const Flags& f);
void apply_threads(const Flags& f);
// --weights: resident (copied into huge pages, fastest) or mapped (page cache only).
engine::Residency weights_residency(const Flags& f);
// --weights-dtype: auto (as stored) or q8_0 (quantized at load).
engine::WeightFormat weight_format(const Flags& f);

}  // namespace mnemo::cli
