// The adapter to the engine, alone in its translation unit: it is the only
// code here that needs engine::mean_hidden_state's definition at link time.
#include <stdexcept>

#include "engine/model/hidden_states.h"
#include "memory/episodes/hidden_state_embedder.h"

namespace mnemo::memory::episodes {

bool engine_hidden_state_available() {
#ifdef MNEMO_HAVE_MEAN_HIDDEN_STATE
  return true;
#else
  return false;
#endif
}

HiddenStateFn engine_hidden_state(const engine::Model& model, int64_t layer) {
#ifdef MNEMO_HAVE_MEAN_HIDDEN_STATE
  return [&model, layer](std::span<const int32_t> tokens) { return engine::mean_hidden_state(model, tokens, layer); };
#else
  (void)model;
  (void)layer;
  return [](std::span<const int32_t>) -> std::vector<float> {
    throw std::runtime_error("engine::mean_hidden_state is not defined in this build (engine/model/hidden_states.cc)");
  };
#endif
}

}  // namespace mnemo::memory::episodes
