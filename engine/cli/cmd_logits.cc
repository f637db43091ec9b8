#include <cstdio>
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/cli/kv_flags.h"
#include "engine/model/model.h"
#include "engine/serving/engine.h"
#include "engine/tokenizer/tokenizer.h"

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
  add_kv_dtype_flag(f, "", "; default: f32 with --precision exact, bf16 with fast");
  if (!f.parse(args)) return 0;
  apply_threads(f);
  const std::string precision = f.str("precision");
  if (precision != "exact" && precision != "fast") throw UsageError("--precision must be exact or fast");
  kernels::cpu::set_matmul_precision(precision == "exact" ? kernels::cpu::MatmulPrecision::Exact
                                                          : kernels::cpu::MatmulPrecision::Fast);
  const kernels::KvDType kv_type = kv_dtype(f, precision == "exact" ? kernels::KvDType::F32 : kernels::KvDType::BF16);
  const auto ids = parse_id_list("tokens", f.str("tokens"));
  const auto model = engine::Model::load(model_dir(f), weights_residency(f), weight_format(f));
  const int64_t V = model->config().vocab_size;
  for (int32_t id : ids)
    if (id >= V) throw UsageError("--tokens: id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(V));
  if (ids.empty()) throw UsageError("--tokens: no token ids");
  // Through the Engine facade, as served requests run.
  const engine::Tokenizer tok = engine::Tokenizer::load(model->dir() / "tokenizer.json");
  engine::EngineOptions eopt;
  eopt.kv_cache_tokens = int64_t(ids.size());
  eopt.kv_dtype = kv_type;
  engine::Engine eng(*model, tok, eopt);
  engine::Request req;
  req.prompt = ids;
  req.options.max_tokens = 0;
  req.logits = f.on("all") ? engine::LogitsOutput::All : engine::LogitsOutput::Last;
  const auto h = eng.submit(std::move(req));
  std::vector<float> logits;
  for (;;) {
    auto e = h.stream->next();
    if (!e) continue;
    if (e->kind == engine::StreamEvent::Kind::Error) throw std::runtime_error(e->error);
    if (e->kind == engine::StreamEvent::Kind::Logits) logits.insert(logits.end(), e->logits.begin(), e->logits.end());
    if (e->kind == engine::StreamEvent::Kind::Done) break;
  }
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
