// libFuzzer target: the input is a config.json. ModelError is the only
// acceptable way to refuse it; an accepted config must be one the forward
// pass can size its buffers from.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "engine/model/config.h"
#include "engine/model/model_error.h"

namespace {

using mnemo::engine::ModelConfig;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "config invariant violated: %s\n", what);
  std::abort();
}

void check(const ModelConfig& c) {
  if (c.hidden_size <= 0 || c.num_layers <= 0 || c.intermediate_size <= 0 || c.vocab_size <= 0)
    violated("non-positive size");
  if (c.num_heads <= 0 || c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0) violated("bad head counts");
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) violated("head_dim not positive and even");
  if (!(c.rms_norm_eps > 0) || !(c.rope_theta > 0)) violated("eps or theta not positive");
  // The forward pass calls this right after loading; it must be safe too.
  if (mnemo::engine::rope_inv_freq(c).size() != size_t(c.head_dim / 2)) violated("inv_freq size");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check(mnemo::engine::parse_config(text, "fuzz/config.json"));
  } catch (const mnemo::engine::ModelError&) {
  }
  return 0;
}
