#include "engine/model/generator.h"

#include <cmath>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "engine/model/safetensors_writer.h"
#include "engine/tokenizer/bpe_trainer.h"
#include "engine/tokenizer/bundled_corpus.h"

namespace mnemo::engine {
namespace {

namespace fs = std::filesystem;
using kernels::DType;
using nlohmann::json;

// splitmix64: tiny, portable, and the same stream on every platform, unlike
// std::normal_distribution whose output the standard leaves open.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return double((next() >> 11) + 1) * 0x1.0p-53; }  // (0, 1]
  double normal() {
    if (have_spare_) { have_spare_ = false; return spare_; }
    const double r = std::sqrt(-2.0 * std::log(uniform())), a = 2 * std::numbers::pi * uniform();
    spare_ = r * std::sin(a);
    have_spare_ = true;
    return r * std::cos(a);
  }

 private:
  uint64_t s_;
  double spare_ = 0;
  bool have_spare_ = false;
};

uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

struct Family {
  std::string architecture, model_type;
  std::vector<std::string> specials;
  std::optional<std::string> bos;
  std::vector<std::string> eos;
};

Family family_of(const std::string& arch) {
  if (arch == "llama")
    return {"LlamaForCausalLM", "llama",
            {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
             "<|eom_id|>", "<|python_tag|>"},
            "<|begin_of_text|>", {"<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"}};
  if (arch == "qwen2")
    return {"Qwen2ForCausalLM", "qwen2",
            {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"},
            std::nullopt, {"<|im_end|>", "<|endoftext|>"}};
  if (arch == "mistral")
    return {"MistralForCausalLM", "mistral",
            {"<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
             "[TOOL_RESULTS]", "[/TOOL_RESULTS]"},
            "<s>", {"</s>"}};
  throw std::invalid_argument("unknown --arch '" + arch + "' (use llama, qwen2 or mistral)");
}

class TensorMaker {
 public:
  TensorMaker(uint64_t seed, DType dtype) : seed_(seed), dtype_(dtype) {}

  // Values mean + std * N(0,1); each tensor draws from its own stream keyed
  // by name, so sharding or ordering never changes a weight.
  TensorData make(const std::string& name, std::vector<int64_t> shape, double mean, double std) const {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    Rng rng(seed_ ^ name_hash(name));
    TensorData t{name, dtype_, std::move(shape), std::vector<uint8_t>(size_t(count) * kernels::dtype_size(dtype_))};
    for (int64_t i = 0; i < count; ++i) {
      const float v = float(mean + std * rng.normal());
      if (dtype_ == DType::F32) {
        std::memcpy(&t.bytes[size_t(i) * 4], &v, 4);
      } else {
        const uint16_t h = dtype_ == DType::BF16 ? kernels::f32_to_bf16(v) : kernels::f32_to_f16(v);
        std::memcpy(&t.bytes[size_t(i) * 2], &h, 2);
      }
    }
    return t;
  }

 private:
  uint64_t seed_;
  DType dtype_;
};

void write_json(const fs::path& p, const json& j) {
  std::ofstream out(p, std::ios::trunc);
  if (!out) throw std::runtime_error(p.string() + ": cannot write");
  out << j.dump(2) << "\n";
}

void check(const GeneratorOptions& o) {
  auto positive = [](int64_t v, const char* flag) {
    if (v <= 0) throw std::invalid_argument(std::string(flag) + " must be positive");
  };
  positive(o.hidden, "--hidden");
  positive(o.layers, "--layers");
  positive(o.heads, "--heads");
  positive(o.kv_heads, "--kv-heads");
  positive(o.intermediate, "--intermediate");
  positive(o.vocab, "--vocab");
  if (o.heads % o.kv_heads) throw std::invalid_argument("--kv-heads must divide --heads");
  const int64_t hd = o.head_dim.value_or(o.hidden / o.heads);
  if (!o.head_dim && o.hidden % o.heads) throw std::invalid_argument("--hidden must be a multiple of --heads (or give --head-dim)");
  if (hd <= 0 || hd % 2) throw std::invalid_argument("head dim must be positive and even");
  if (o.shards < 1) throw std::invalid_argument("--shards must be at least 1");
  if (o.sliding_window < 0 || (o.sliding_window > 0 && o.arch != "mistral"))
    throw std::invalid_argument("--sliding-window applies to --arch mistral only and must be positive");
}

}  // namespace

void generate_model(const GeneratorOptions& o, const fs::path& out) {
  check(o);
  const Family fam = family_of(o.arch);
  if (o.vocab < 256 + int64_t(fam.specials.size()) + 1)
    throw std::invalid_argument("--vocab must be at least " + std::to_string(257 + fam.specials.size()) +
                                " (256 bytes, the special tokens, one merge)");
  fs::create_directories(out);
  const int64_t H = o.hidden, hd = o.head_dim.value_or(o.hidden / o.heads);
  const int64_t qd = o.heads * hd, kvd = o.kv_heads * hd, I = o.intermediate, V = o.vocab;

  // Scales chosen so activations keep unit size through the residual stream
  // and the logits spread over a few nats: neither uniform nor one-hot.
  const TensorMaker mk(o.seed, o.dtype);
  std::vector<TensorData> ts;
  ts.push_back(mk.make("model.embed_tokens.weight", {V, H}, 0, 3.0 / std::sqrt(double(H))));
  for (int64_t l = 0; l < o.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    ts.push_back(mk.make(p + "input_layernorm.weight", {H}, 1.0, 0.1));
    ts.push_back(mk.make(p + "self_attn.q_proj.weight", {qd, H}, 0, 1.0 / std::sqrt(double(H))));
    ts.push_back(mk.make(p + "self_attn.k_proj.weight", {kvd, H}, 0, 1.0 / std::sqrt(double(H))));
    ts.push_back(mk.make(p + "self_attn.v_proj.weight", {kvd, H}, 0, 1.0 / std::sqrt(double(H))));
    if (o.arch == "qwen2") {
      ts.push_back(mk.make(p + "self_attn.q_proj.bias", {qd}, 0, 0.5));
      ts.push_back(mk.make(p + "self_attn.k_proj.bias", {kvd}, 0, 0.5));
      ts.push_back(mk.make(p + "self_attn.v_proj.bias", {kvd}, 0, 0.5));
    }
    ts.push_back(mk.make(p + "self_attn.o_proj.weight", {H, qd}, 0, 0.5 / std::sqrt(double(qd))));
    ts.push_back(mk.make(p + "post_attention_layernorm.weight", {H}, 1.0, 0.1));
    ts.push_back(mk.make(p + "mlp.gate_proj.weight", {I, H}, 0, 1.0 / std::sqrt(double(H))));
    ts.push_back(mk.make(p + "mlp.up_proj.weight", {I, H}, 0, 1.0 / std::sqrt(double(H))));
    ts.push_back(mk.make(p + "mlp.down_proj.weight", {H, I}, 0, 0.5 / std::sqrt(double(I))));
  }
  ts.push_back(mk.make("model.norm.weight", {H}, 1.0, 0.1));
  if (!o.tie) ts.push_back(mk.make("lm_head.weight", {V, H}, 0, 3.0 / std::sqrt(double(H))));

  // Weights: one file, or shards of roughly equal size in tensor order.
  for (const auto& entry : fs::directory_iterator(out))
    if (entry.path().extension() == ".safetensors") fs::remove(entry.path());
  fs::remove(out / "model.safetensors.index.json");
  if (o.shards == 1) {
    std::vector<const TensorData*> all;
    for (const TensorData& t : ts) all.push_back(&t);
    write_safetensors(out / "model.safetensors", all);
  } else {
    uint64_t total = 0;
    for (const TensorData& t : ts) total += t.bytes.size();
    const int S = int(std::min<size_t>(size_t(o.shards), ts.size()));
    json weight_map = json::object();
    size_t next = 0;
    uint64_t written = 0;
    for (int s = 0; s < S; ++s) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, S);
      std::vector<const TensorData*> part;
      const uint64_t target = total * uint64_t(s + 1) / uint64_t(S);
      // Leave at least one tensor for each remaining shard.
      while (next < ts.size() && (part.empty() || written + ts[next].bytes.size() <= target) &&
             ts.size() - next > size_t(S - s - 1)) {
        written += ts[next].bytes.size();
        weight_map[ts[next].name] = name;
        part.push_back(&ts[next++]);
      }
      if (s == S - 1)
        while (next < ts.size()) { weight_map[ts[next].name] = name; part.push_back(&ts[next++]); }
      write_safetensors(out / name, part);
    }
    write_json(out / "model.safetensors.index.json", {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
  }

  // Tokenizer trained on the bundled text; its ids decide bos/eos.
  const json tok = train_byte_level_bpe(bundled_corpus(), int32_t(V), fam.specials, fam.bos);
  write_json(out / "tokenizer.json", tok);
  auto id_of = [&](const std::string& s) -> int64_t {
    for (const json& a : tok["added_tokens"])
      if (a["content"] == s) return a["id"].get<int64_t>();
    throw std::logic_error("trained tokenizer lacks special token " + s);
  };
  std::vector<int64_t> eos_ids;
  for (const std::string& e : fam.eos) eos_ids.push_back(id_of(e));

  json cfg = {{"architectures", {fam.architecture}},
              {"model_type", fam.model_type},
              {"hidden_size", H},
              {"num_hidden_layers", o.layers},
              {"num_attention_heads", o.heads},
              {"num_key_value_heads", o.kv_heads},
              {"intermediate_size", I},
              {"vocab_size", V},
              {"max_position_embeddings", o.max_position},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", o.rope_theta},
              {"hidden_act", "silu"},
              {"tie_word_embeddings", o.tie},
              {"torch_dtype", o.dtype == DType::F32 ? "float32" : o.dtype == DType::F16 ? "float16" : "bfloat16"},
              {"eos_token_id", eos_ids.size() == 1 ? json(eos_ids[0]) : json(eos_ids)},
              {"mnemo_generator", {{"seed", o.seed}}}};
  if (fam.bos) cfg["bos_token_id"] = id_of(*fam.bos);
  if (o.head_dim) cfg["head_dim"] = *o.head_dim;
  if (o.arch == "llama") cfg["attention_bias"] = false;
  // Explicit null: Hugging Face's MistralConfig otherwise assumes a 4096 window.
  if (o.arch == "mistral") cfg["sliding_window"] = o.sliding_window > 0 ? json(o.sliding_window) : json(nullptr);
  if (o.rope_llama3)
    cfg["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", o.rope_factor},
                           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", o.rope_original_max}};
  write_json(out / "config.json", cfg);

  json tcfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
               {"model_max_length", o.max_position},
               {"eos_token", fam.eos.back() == "<|endoftext|>" ? fam.eos.front() : fam.eos.back()},
               {"bos_token", fam.bos ? json(*fam.bos) : json(nullptr)},
               {"add_bos_token", fam.bos.has_value()}};
  if (o.arch == "llama") tcfg["eos_token"] = "<|eot_id|>";
  write_json(out / "tokenizer_config.json", tcfg);
}

}  // namespace mnemo::engine
