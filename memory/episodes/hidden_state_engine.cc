// The adapter to the engine, alone in its translation unit: the only code
// here that needs the engine's forward pass at link time.
#include "engine/model/hidden_states.h"
#include "memory/episodes/hidden_state_embedder.h"

namespace mnemo::memory::episodes {

HiddenStateFn engine_hidden_state(const engine::Model& model, int64_t layer) {
  return [&model, layer](std::span<const int32_t> tokens) { return engine::mean_hidden_state(model, tokens, layer); };
}

}  // namespace mnemo::memory::episodes
