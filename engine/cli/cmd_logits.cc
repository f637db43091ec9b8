#include <cstdio>
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/model/model.h"

namespace mnemo::cli {

int cmd_logits(const std::vector<std::string>& args) {
  Flags f("mnemo logits [--model DIR] --tokens 1,2,3 [--all]",
          "Runs the token ids through the model and prints {\"logits\": [[...], ...]}: the last\n"
          "position, or every position with --all. For checking against reference implementations.");
  add_model_flags(f);
  f.value("tokens", "1,2,3", "comma-separated token ids")
      .toggle("all", "print the logits of every position")
      .value("precision", "exact|fast",
             "exact: f32 arithmetic throughout; fast: bf16 GEMM inputs for BF16 weights, as serving does", "exact");
  if (!f.parse(args)) return 0;
  apply_threads(f);
  const std::string precision = f.str("precision");
  if (precision != "exact" && precision != "fast") throw UsageError("--precision must be exact or fast");
  kernels::cpu::set_matmul_precision(precision == "exact" ? kernels::cpu::MatmulPrecision::Exact
                                                          : kernels::cpu::MatmulPrecision::Fast);
  const auto ids = parse_id_list("tokens", f.str("tokens"));
  const auto model = engine::Model::load(model_dir(f), weights_residency(f));
  const int64_t V = model->config().vocab_size;
  for (int32_t id : ids)
    if (id >= V) throw UsageError("--tokens: id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(V));
  engine::KvCache cache = model->new_cache(int64_t(ids.size()));
  const std::vector<float> logits = model->forward(ids, cache, f.on("all"));
  // %.9g round-trips every f32 exactly.
  std::string out = "{\"logits\": [";
  char buf[32];
  for (size_t r = 0; r < logits.size() / size_t(V); ++r) {
    out += r ? ", [" : "[";
    for (int64_t i = 0; i < V; ++i) {
      std::snprintf(buf, sizeof buf, i ? ", %.9g" : "%.9g", double(logits[r * size_t(V) + size_t(i)]));
      out += buf;
    }
    out += "]";
  }
  out += "]}\n";
  std::cout << out;
  return 0;
}

}  // namespace mnemo::cli
