#include "engine/model/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <sstream>

#include "engine/model/model_error.h"

namespace mnemo::engine {
namespace {

using nlohmann::json;

// Sizes beyond these are not a model we could hold; they also keep fuzzed
// configs from asking for absurd allocations.
constexpr int64_t kMaxDim = int64_t(1) << 20;
constexpr int64_t kMaxVocab = int64_t(1) << 22;

struct Reader {
  const json& j;
  std::string_view source;

  [[noreturn]] void fail(std::string_view field, std::string_view why) const {
    throw ModelError(std::string(source) + ": field '" + std::string(field) + "' " + std::string(why));
  }
  bool has(const char* f) const { return j.contains(f) && !j[f].is_null(); }
  int64_t integer(const char* f, int64_t lo, int64_t hi) const {
    if (!has(f)) fail(f, "is missing");
    return integer_of(j[f], f, lo, hi);
  }
  int64_t integer_or(const char* f, int64_t dflt, int64_t lo, int64_t hi) const {
    return has(f) ? integer_of(j[f], f, lo, hi) : dflt;
  }
  int64_t integer_of(const json& v, std::string_view f, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer()) fail(f, "must be an integer");
    const int64_t x = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : v.get<int64_t>();
    if (x < lo || x > hi) fail(f, "is " + std::to_string(x) + ", outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  }
  float number_or(const char* f, float dflt) const {
    if (!has(f)) return dflt;
    return number_of(j[f], f);
  }
  float number_of(const json& v, std::string_view f) const {
    if (!v.is_number()) fail(f, "must be a number");
    const double x = v.get<double>();
    if (!std::isfinite(x) || !std::isfinite(float(x))) fail(f, "must be finite");
    return float(x);
  }
  bool boolean_or(const char* f, bool dflt) const {
    if (!has(f)) return dflt;
    if (!j[f].is_boolean()) fail(f, "must be true or false");
    return j[f].get<bool>();
  }
};

Arch parse_arch(const Reader& r, std::string* name) {
  if (!r.has("architectures")) r.fail("architectures", "is missing");
  const json& a = r.j["architectures"];
  if (!a.is_array() || a.empty() || !a[0].is_string()) r.fail("architectures", "must be a non-empty array of strings");
  *name = a[0].get<std::string>();
  if (*name == "LlamaForCausalLM") return Arch::Llama;
  if (*name == "Qwen2ForCausalLM") return Arch::Qwen2;
  if (*name == "MistralForCausalLM") return Arch::Mistral;
  r.fail("architectures", "names unsupported architecture '" + *name +
                              "' (supported: LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM)");
}

std::optional<RopeScaling> parse_rope_scaling(const Reader& r) {
  if (!r.has("rope_scaling")) return std::nullopt;
  const json& s = r.j["rope_scaling"];
  if (!s.is_object()) r.fail("rope_scaling", "must be an object or null");
  std::string type;
  for (const char* key : {"rope_type", "type"})
    if (s.contains(key) && s[key].is_string()) { type = s[key].get<std::string>(); break; }
  if (type == "default") return std::nullopt;
  if (type != "llama3") r.fail("rope_scaling", "has unsupported type '" + type + "' (supported: llama3, default)");
  Reader sr{s, r.source};
  RopeScaling rs;
  rs.factor = sr.number_or("factor", rs.factor);
  rs.low_freq_factor = sr.number_or("low_freq_factor", rs.low_freq_factor);
  rs.high_freq_factor = sr.number_or("high_freq_factor", rs.high_freq_factor);
  rs.original_max_position_embeddings = sr.integer_or("original_max_position_embeddings", rs.original_max_position_embeddings, 1, int64_t(1) << 40);
  if (!(rs.factor > 0)) r.fail("rope_scaling.factor", "must be positive");
  if (!(rs.high_freq_factor > rs.low_freq_factor) || !(rs.low_freq_factor > 0))
    r.fail("rope_scaling", "needs 0 < low_freq_factor < high_freq_factor");
  return rs;
}

std::vector<int32_t> parse_eos(const Reader& r) {
  std::vector<int32_t> ids;
  if (!r.has("eos_token_id")) return ids;
  const json& e = r.j["eos_token_id"];
  if (e.is_array()) {
    for (const json& v : e) ids.push_back(int32_t(r.integer_of(v, "eos_token_id", 0, kMaxVocab)));
  } else {
    ids.push_back(int32_t(r.integer_of(e, "eos_token_id", 0, kMaxVocab)));
  }
  return ids;
}

}  // namespace

ModelConfig parse_config(std::string_view json_text, std::string_view source) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw ModelError(std::string(source) + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw ModelError(std::string(source) + ": top level must be a JSON object");
  const Reader r{j, source};
  ModelConfig c;
  c.arch = parse_arch(r, &c.architecture);
  c.hidden_size = r.integer("hidden_size", 1, kMaxDim);
  c.num_layers = r.integer("num_hidden_layers", 1, 4096);
  c.num_heads = r.integer("num_attention_heads", 1, 4096);
  c.num_kv_heads = r.integer_or("num_key_value_heads", c.num_heads, 1, c.num_heads);
  if (c.num_heads % c.num_kv_heads != 0)
    r.fail("num_key_value_heads", "must divide num_attention_heads (" + std::to_string(c.num_heads) + ")");
  if (r.has("head_dim")) {
    c.head_dim = r.integer("head_dim", 2, 4096);
  } else {
    if (c.hidden_size % c.num_heads != 0) r.fail("hidden_size", "is not a multiple of num_attention_heads and head_dim is absent");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) r.fail("head_dim", "must be even for rotary embeddings");
  c.intermediate_size = r.integer("intermediate_size", 1, kMaxDim);
  c.vocab_size = r.integer("vocab_size", 1, kMaxVocab);
  c.max_position_embeddings = r.integer_or("max_position_embeddings", c.max_position_embeddings, 1, int64_t(1) << 40);
  c.rms_norm_eps = r.number_or("rms_norm_eps", c.rms_norm_eps);
  if (!(c.rms_norm_eps > 0)) r.fail("rms_norm_eps", "must be positive");
  c.rope_theta = r.number_or("rope_theta", c.rope_theta);
  if (!(c.rope_theta > 0)) r.fail("rope_theta", "must be positive");
  c.rope_scaling = parse_rope_scaling(r);
  c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);
  c.attention_bias = c.arch == Arch::Qwen2 ? true : r.boolean_or("attention_bias", false);
  // As Hugging Face's MistralConfig: an absent key means a 4096 window, null none.
  if (c.arch == Arch::Mistral)
    c.sliding_window = j.contains("sliding_window") ? r.integer_or("sliding_window", 0, 1, int64_t(1) << 40) : 4096;
  if (c.arch == Arch::Qwen2 && r.boolean_or("use_sliding_window", false))
    r.fail("use_sliding_window", "is true, which is not supported (Qwen2's per-layer windows)");
  if (r.boolean_or("mlp_bias", false)) r.fail("mlp_bias", "is true, which is not supported");
  if (r.has("bos_token_id")) c.bos_token_id = int32_t(r.integer("bos_token_id", 0, kMaxVocab));
  c.eos_token_ids = parse_eos(r);
  if (r.has("hidden_act")) {
    const json& act = j["hidden_act"];
    if (!act.is_string() || (act != "silu" && act != "swish"))
      r.fail("hidden_act", "must be \"silu\" (the SwiGLU MLP of this family)");
  }
  return c;
}

ModelConfig load_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ModelError(file.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), file.string());
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    // f32 arithmetic, as the Hugging Face reference computes it.
    inv[size_t(i)] = 1.0f / std::pow(c.rope_theta, float(2 * i) / float(c.head_dim));
  if (!c.rope_scaling) return inv;
  // Llama 3.1 scaling: long wavelengths are slowed by `factor`, short ones
  // kept, and the band in between interpolated smoothly.
  const RopeScaling& s = *c.rope_scaling;
  const double old_len = double(s.original_max_position_embeddings);
  const double low_wavelen = old_len / s.low_freq_factor;
  const double high_wavelen = old_len / s.high_freq_factor;
  for (float& f : inv) {
    const double wavelen = 2 * std::numbers::pi / f;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      f = float(f / s.factor);
    } else {
      const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f = float((1 - smooth) * f / s.factor + smooth * f);
    }
  }
  return inv;
}

}  // namespace mnemo::engine
