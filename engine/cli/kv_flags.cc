#include "engine/cli/kv_flags.h"

#include "engine/cli/flags.h"

namespace mnemo::cli {

void add_kv_dtype_flag(Flags& f, const std::string& dflt, const std::string& extra_help) {
  f.value("kv-dtype", "bf16|f32",
          "element type of the KV cache: bf16 stores half the bytes per token (decode at long contexts reads half "
          "as much, a pool holds twice the tokens) at 8 significant bits per key and value; f32 keeps what the "
          "forward pass computed exactly" + extra_help,
          dflt.empty() ? std::nullopt : std::optional<std::string>(dflt));
}

kernels::KvDType kv_dtype(const Flags& f, kernels::KvDType fallback) {
  if (!f.has("kv-dtype")) return fallback;
  const std::string v = f.str("kv-dtype");
  if (const auto t = kernels::parse_kv_dtype(v)) return *t;
  throw UsageError("--kv-dtype must be bf16 or f32, got '" + v + "'");
}

}  // namespace mnemo::cli
