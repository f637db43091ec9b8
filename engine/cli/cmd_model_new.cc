#include <algorithm>
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/model/generator.h"
#include "engine/model/recall_testbed.h"

namespace mnemo::cli {
namespace {

// Flags given on the command line (Flags fills in defaults, so has() cannot tell).
bool given(const std::vector<std::string>& args, const std::string& name) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& a) {
    return a == "--" + name || a.rfind("--" + name + "=", 0) == 0;
  });
}

// The recall testbed's shape and weights are fixed by construction; only
// the token codes (topics, seed) and the RoPE base vary.
int recall_testbed(const Flags& f, const std::vector<std::string>& args) {
  for (const char* name : {"hidden", "layers", "heads", "kv-heads", "intermediate", "vocab", "head-dim", "dtype",
                           "shards", "tie", "rope-scaling", "rope-factor", "rope-original-max", "max-position",
                           "sliding-window"})
    if (given(args, name))
      throw UsageError(std::string("--") + name +
                       " does not apply to --arch recall-testbed (its shape is fixed: hidden 512, 2 layers, "
                       "vocab 32000, f32)");
  engine::RecallTestbedOptions o;
  if (f.has("topics")) o.topics = f.integer("topics", 1, 64);
  if (f.has("topic-b")) o.topic_b = f.number("topic-b");
  if (given(args, "rope-theta")) o.rope_theta = float(f.number("rope-theta"));
  o.robust = !f.on("basic");
  o.seed = uint64_t(f.integer("seed", 0, INT64_MAX));
  const std::string out = f.str("out");
  try {
    engine::generate_recall_testbed(o, out);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  std::cerr << "mnemo: wrote recall-testbed model to " << out << "\n";
  return 0;
}

}  // namespace

int cmd_model_new(const std::vector<std::string>& args) {
  engine::GeneratorOptions d;
  Flags f("mnemo model new --out DIR [flags]",
          "Generates a random Llama-family model in Hugging Face layout (config.json, safetensors,\n"
          "tokenizer.json trained on bundled text, tokenizer_config.json). Same flags and seed: same files.\n"
          "--arch recall-testbed writes instead the hand-built 2-layer Llama that recalls key -> value\n"
          "exactly (engine/model/recall_testbed.h); it takes only --topics, --topic-b, --basic,\n"
          "--rope-theta, --seed and --out, and refuses the shape flags.");
  f.value("arch", "llama|qwen2|mistral|recall-testbed", "architecture", d.arch)
      .value("hidden", "H", "hidden size", std::to_string(d.hidden))
      .value("layers", "L", "decoder layers", std::to_string(d.layers))
      .value("heads", "N", "attention heads", std::to_string(d.heads))
      .value("kv-heads", "K", "key/value heads (divides --heads)", std::to_string(d.kv_heads))
      .value("intermediate", "I", "MLP intermediate size", std::to_string(d.intermediate))
      .value("vocab", "V", "vocabulary size, special tokens included", std::to_string(d.vocab))
      .value("head-dim", "D", "head dimension written to config.json (default: hidden/heads, not written)")
      .value("dtype", "f32|f16|bf16", "weight dtype", "bf16")
      .value("shards", "S", "number of safetensors shards (>1 writes model.safetensors.index.json)", "1")
      .toggle("tie", "tie the LM head to the embedding (no lm_head.weight)")
      .value("rope-scaling", "llama3", "rope_scaling type to write")
      .value("rope-factor", "F", "llama3 rope scaling factor", "8")
      .value("rope-original-max", "N", "llama3 original_max_position_embeddings", "8192")
      .value("rope-theta", "T", "RoPE base (recall-testbed: 1e10 unless given)", "10000")
      .value("max-position", "N", "max_position_embeddings", std::to_string(d.max_position))
      .value("sliding-window", "N", "Mistral attention window (default: none, written as null)")
      .value("seed", "S", "random seed", "0")
      .value("topics", "N", "recall-testbed: topics partitioning the vocabulary, 1..64 (default: 8)")
      .value("topic-b", "B", "recall-testbed: topic weight of each token code (default: sqrt(0.2), 10 nats)")
      .toggle("basic", "recall-testbed: layer 1 key PREV only (default: PREV - 0.5 TOK, the robust variant)")
      .value("out", "DIR", "output directory (created)");
  if (!f.parse(args)) return 0;
  if (f.str("arch") == "recall-testbed") return recall_testbed(f, args);
  for (const char* name : {"topics", "topic-b", "basic"})
    if (f.has(name)) throw UsageError(std::string("--") + name + " applies to --arch recall-testbed only");
  engine::GeneratorOptions o;
  o.arch = f.str("arch");
  o.hidden = f.integer("hidden", 2, 1 << 16);
  o.layers = f.integer("layers", 1, 1024);
  o.heads = f.integer("heads", 1, 1024);
  o.kv_heads = f.integer("kv-heads", 1, 1024);
  o.intermediate = f.integer("intermediate", 1, 1 << 18);
  o.vocab = f.integer("vocab", 1, 1 << 20);
  if (f.has("head-dim")) o.head_dim = f.integer("head-dim", 2, 4096);
  const std::string dt = f.str("dtype");
  if (dt == "f32") o.dtype = kernels::DType::F32;
  else if (dt == "f16") o.dtype = kernels::DType::F16;
  else if (dt == "bf16") o.dtype = kernels::DType::BF16;
  else throw UsageError("--dtype must be f32, f16 or bf16, got '" + dt + "'");
  o.shards = int(f.integer("shards", 1, 1000));
  o.tie = f.on("tie");
  if (f.has("rope-scaling")) {
    if (f.str("rope-scaling") != "llama3") throw UsageError("--rope-scaling supports only llama3");
    o.rope_llama3 = true;
  }
  o.rope_factor = float(f.number("rope-factor"));
  o.rope_original_max = f.integer("rope-original-max", 1, int64_t(1) << 32);
  o.rope_theta = float(f.number("rope-theta"));
  o.max_position = f.integer("max-position", 1, int64_t(1) << 32);
  o.seed = uint64_t(f.integer("seed", 0, INT64_MAX));
  if (f.has("sliding-window")) o.sliding_window = f.integer("sliding-window", 1, int64_t(1) << 32);
  const std::string out = f.str("out");
  try {
    engine::generate_model(o, out);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  std::cerr << "mnemo: wrote " << o.arch << " model to " << out << "\n";
  return 0;
}

}  // namespace mnemo::cli
