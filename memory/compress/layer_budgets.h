#pragma once
// EpiCache's layer-wise budgets: layers whose keys change most when they can
// no longer see distant tokens (low sigma) get more of the KV budget.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace mnemo::memory::compress {

// M_l, slots per KV head for each layer: proportional to (1 - sigma_l)^alpha,
// summing exactly to per_layer x layers, none below `floor` (default
// per_layer / 4). Layers the proportion would put under the floor are held
// at it and the rest shared among the others in proportion again; integer
// slots by largest remainder (ties to the lower layer). All-zero weights
// (every sigma 1) give the uniform split. sigma is clamped to [-1, 1].
// Throws std::invalid_argument for no layers, per_layer < 1, a negative
// alpha, or a floor above per_layer.
std::vector<int64_t> layer_budgets(std::span<const double> sigma, int64_t per_layer, double alpha = 2.0,
                                   std::optional<int64_t> floor = std::nullopt);

// The same budget in every layer.
std::vector<int64_t> uniform_budgets(int64_t layers, int64_t per_layer);

}  // namespace mnemo::memory::compress
