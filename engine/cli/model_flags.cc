#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>
#include <unistd.h>

#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/model/builtin_model.h"
#include "kernels/cpu/parallel.h"

extern "C" void openblas_set_num_threads(int);

namespace mnemo::cli {

namespace fs = std::filesystem;

void add_model_flags(Flags& f) {
  f.value("model", "DIR", "model directory in Hugging Face layout; omitted: the built-in small model");
  f.value("threads", "N", "CPU threads", std::to_string(std::max(1u, std::thread::hardware_concurrency())));
  f.value("weights", "resident|mapped|copy",
          "resident: in 2 MB pages (fast decode), the page cache's own when it holds the file in 2 MB pages, else a "
          "copy; mapped: the page cache as it is; copy: always a private copy in 2 MB pages",
          "resident");
  f.value("weights-dtype", "auto|q8_0",
          "auto: matrices as stored; q8_0: quantize them at load to 8 bits per value plus an f16 scale per 32 "
          "(half of BF16's bytes, so decode streams half the memory; logits move by the quantization error)",
          "auto");
}

// The built-in model: generated once into MNEMO_HOME (or ~/.cache/mnemo) so
// the first run needs nothing downloaded.
fs::path model_dir(const Flags& f) {
  if (f.has("model")) return f.str("model");
  const fs::path home = engine::default_home();
  if (!fs::exists(home / "models" / "default" / "config.json"))
    std::cerr << "mnemo: generating the built-in model into " << (home / "models" / "default").string() << " (one time)\n";
  return engine::ensure_builtin_model(home);
}

engine::Residency weights_residency(const Flags& f) {
  const std::string w = f.str("weights");
  if (w == "resident") return engine::Residency::Resident;
  if (w == "mapped") return engine::Residency::Mapped;
  if (w == "copy") return engine::Residency::Copy;
  throw UsageError("--weights must be resident, mapped or copy, got '" + w + "'");
}

engine::WeightFormat weight_format(const Flags& f) {
  const std::string v = f.str("weights-dtype");
  if (const auto w = engine::parse_weight_format(v)) return *w;
  throw UsageError("--weights-dtype must be auto or q8_0, got '" + v + "'");
}

void apply_threads(const Flags& f) {
  const int n = int(f.integer("threads", 1, 1024));
  kernels::cpu::set_num_threads(n);
  openblas_set_num_threads(n);
}

}  // namespace mnemo::cli
