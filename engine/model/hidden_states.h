#pragma once
// Mean-pooled hidden states of a token sequence: the served model's own
// embedding of a text (episode segmentation, POST /v1/embeddings).
#include <cstdint>
#include <span>
#include <vector>

#include "engine/model/model.h"

namespace mnemo::engine {

// Runs `tokens` through the first `layer` decoder layers (layer in
// 1..num_layers; num_layers = the last layer's output, before the final norm)
// on a fresh cache, and returns the mean over tokens of the residual stream
// there, [hidden_size]. Long inputs go in chunks, so memory stays bounded.
// Throws std::invalid_argument for empty tokens, ids outside the vocabulary or
// a layer out of range.
std::vector<float> mean_hidden_state(const Model& model, std::span<const int32_t> tokens, int64_t layer);

}  // namespace mnemo::engine
