#include "engine/model/recall_testbed.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <stdexcept>
#include <string>

#include "engine/model/safetensors_writer.h"
#include "engine/tokenizer/bpe_trainer.h"
#include "engine/tokenizer/bundled_corpus.h"

namespace mnemo::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Shape (shared/testbeds/recall-model.md, "Shape").
constexpr int64_t kHidden = 512, kLayers = 2, kHeads = 4, kKvHeads = 2, kHeadDim = 256, kInter = 1024;
constexpr int64_t kCode = 128;  // width of a token code
// Residual stream: dim 0 the constant 1, then the three code blocks.
constexpr int64_t kConst = 0, kTok = 1, kPrev = 1 + kCode, kOut = 1 + 2 * kCode;
constexpr int64_t kFastPairs = 16;    // previous-token head: RoPE pairs 0..15
constexpr int64_t kSlowPair0 = 64;    // induction head: RoPE pairs 64..127
constexpr double kPrevScale = 356.6;  // S0: the nearest rival (the token itself) 35 nats below
constexpr double kInductionScale = 800;
constexpr double kLogitScale = 20;

// splitmix64 + Box-Muller: the same stream on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  double normal() {
    const double r = std::sqrt(-2.0 * std::log(uniform())), a = 2 * std::numbers::pi * uniform();
    return r * std::cos(a);
  }

 private:
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return double((next() >> 11) + 1) * 0x1.0p-53; }  // (0, 1]
  uint64_t s_;
};

using Vec = std::vector<double>;

double dot(const double* a, const double* b) {
  double s = 0;
  for (int64_t i = 0; i < kCode; ++i) s += a[i] * b[i];
  return s;
}

void normalize(double* a) {
  const double n = std::sqrt(dot(a, a));
  for (int64_t i = 0; i < kCode; ++i) a[i] /= n;
}

// Removes the components along the orthonormal rows of `basis`.
void project_out(double* a, const Vec& basis, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    const double* z = &basis[size_t(r * kCode)];
    const double c = dot(a, z);
    for (int64_t i = 0; i < kCode; ++i) a[i] -= c * z[i];
  }
}

// codes[t * kCode ..]: unit vectors code_t = sqrt(1 - b^2) u_t + b z_topic(t)
// (u_t alone for reserved tokens), u_t random and orthogonal to every z, the
// z orthonormal: the dot product of two codes of one topic is then b^2 plus
// (1 - b^2) u.u, exactly, and reserved tokens carry no topic at all.
Vec make_codes(const RecallTestbedOptions& o) {
  Rng rng(o.seed ^ 0x7265636b616c6c00ull);
  Vec z(size_t(o.topics * kCode));
  for (int64_t t = 0; t < o.topics; ++t) {
    double* zt = &z[size_t(t * kCode)];
    for (int64_t i = 0; i < kCode; ++i) zt[i] = rng.normal();
    project_out(zt, z, t);
    normalize(zt);
  }
  const double a = std::sqrt(1 - o.topic_b * o.topic_b);
  Vec codes(size_t(kRecallVocab * kCode));
  for (int32_t t = 0; t < kRecallVocab; ++t) {
    double* c = &codes[size_t(t) * kCode];
    for (int64_t i = 0; i < kCode; ++i) c[i] = rng.normal();
    project_out(c, z, o.topics);
    normalize(c);
    const int topic = recall_topic_of(t, o.topics);
    if (topic < 0) continue;
    const double* zt = &z[size_t(topic * kCode)];
    for (int64_t i = 0; i < kCode; ++i) c[i] = a * c[i] + o.topic_b * zt[i];
  }
  return codes;
}

// A zero F32 tensor [rows, cols] (or [rows] when cols == 0) with a setter.
struct Tensor {
  TensorData data;
  int64_t cols;
  Tensor(std::string name, int64_t rows, int64_t c) : cols(c) {
    data.name = std::move(name);
    data.dtype = kernels::DType::F32;
    data.shape = c ? std::vector<int64_t>{rows, c} : std::vector<int64_t>{rows};
    data.bytes.assign(size_t(rows * (c ? c : 1)) * 4, 0);
  }
  void set(int64_t r, int64_t c, double v) {
    const float f = float(v);
    std::memcpy(&data.bytes[size_t(r * (cols ? cols : 1) + c) * 4], &f, 4);
  }
  void fill(double v) {
    for (size_t i = 0; i < data.bytes.size() / 4; ++i) set(int64_t(i), 0, v);
  }
};

// Head dim of the d-th code dim in the 64 slowest RoPE pairs (HF
// rotate_half layout: pair m is dims m and m + 128).
int64_t slow_dim(int64_t d) { return d < kCode / 2 ? kSlowPair0 + d : kHeadDim / 2 + kSlowPair0 + (d - kCode / 2); }

std::vector<TensorData> make_weights(const RecallTestbedOptions& o) {
  const Vec codes = make_codes(o);
  const int64_t H = kHidden, V = kRecallVocab, QD = kHeads * kHeadDim, KVD = kKvHeads * kHeadDim;
  std::vector<TensorData> ts;

  Tensor embed("model.embed_tokens.weight", V, H), lm_head("lm_head.weight", V, H);
  for (int64_t t = 0; t < V; ++t) {
    embed.set(t, kConst, 1);
    for (int64_t d = 0; d < kCode; ++d) {
      embed.set(t, kTok + d, codes[size_t(t * kCode + d)]);
      lm_head.set(t, kOut + d, kLogitScale * codes[size_t(t * kCode + d)]);
    }
  }
  ts.push_back(std::move(embed.data));

  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Tensor in_norm(p + "input_layernorm.weight", H, 0), post_norm(p + "post_attention_layernorm.weight", H, 0);
    Tensor q(p + "self_attn.q_proj.weight", QD, H), k(p + "self_attn.k_proj.weight", KVD, H);
    Tensor v(p + "self_attn.v_proj.weight", KVD, H), out(p + "self_attn.o_proj.weight", H, QD);
    // Only query head 0 and KV head 0 are used; the rest stay zero (their
    // attention is uniform and o_proj drops it).
    if (l == 0) {
      // Residual: constant + TOK, norm sqrt(2): this weight makes the norm an identity.
      in_norm.fill(std::sqrt(2.0 / double(H)));
      // Query e^{-i theta_m} * S0 and key 1 in the fastest pairs: after RoPE
      // the score of j seen from i is S0/16 * sum_m cos((i - j - 1) theta_m),
      // peaked at j = i - 1.
      for (int64_t m = 0; m < kFastPairs; ++m) {
        const double theta = std::pow(double(o.rope_theta), -2.0 * double(m) / double(kHeadDim));
        q.set(m, kConst, kPrevScale * std::cos(theta));
        q.set(m + kHeadDim / 2, kConst, -kPrevScale * std::sin(theta));
        k.set(m, kConst, 1);
      }
      for (int64_t d = 0; d < kCode; ++d) {
        v.set(d, kTok + d, 1);
        out.set(kPrev + d, d, 1);
      }
    } else {
      // Residual: constant + TOK + PREV, norm sqrt(3).
      in_norm.fill(std::sqrt(3.0 / double(H)));
      // Match TOK against earlier slots' PREV in the slowest pairs (nearly
      // position free): an exact match scores 800/16 = 50 nats.
      for (int64_t d = 0; d < kCode; ++d) {
        q.set(slow_dim(d), kTok + d, kInductionScale);
        k.set(slow_dim(d), kPrev + d, 1);
        if (o.robust) k.set(slow_dim(d), kTok + d, -0.5);
        v.set(d, kTok + d, 1);
        out.set(kOut + d, d, 1);
      }
    }
    post_norm.fill(1);  // feeds only the zero MLP
    ts.push_back(std::move(in_norm.data));
    ts.push_back(std::move(q.data));
    ts.push_back(std::move(k.data));
    ts.push_back(std::move(v.data));
    ts.push_back(std::move(out.data));
    ts.push_back(std::move(post_norm.data));
    ts.push_back(Tensor(p + "mlp.gate_proj.weight", kInter, H).data);
    ts.push_back(Tensor(p + "mlp.up_proj.weight", kInter, H).data);
    ts.push_back(Tensor(p + "mlp.down_proj.weight", H, kInter).data);
  }
  // Residual at the end: constant + TOK + PREV + OUT, norm 2; keep OUT only.
  Tensor norm("model.norm.weight", H, 0);
  for (int64_t d = 0; d < kCode; ++d) norm.set(kOut + d, 0, std::sqrt(4.0 / double(H)));
  ts.push_back(std::move(norm.data));
  ts.push_back(std::move(lm_head.data));
  return ts;
}

void write_json(const fs::path& p, const json& j) {
  std::ofstream out(p, std::ios::trunc);
  if (!out) throw std::runtime_error(p.string() + ": cannot write");
  out << j.dump(2) << "\n";
}

}  // namespace

int recall_topic_of(int32_t token, int64_t topics) {
  if (token < kRecallReserved || token >= kRecallVocab || topics <= 0) return -1;
  return int((token - kRecallReserved) % topics);
}

int32_t recall_topic_token(int64_t topic, int64_t index, int64_t topics) {
  return int32_t(kRecallReserved + topic + index * topics);
}

int64_t recall_tokens_per_topic(int64_t topics) { return (kRecallVocab - kRecallReserved) / topics; }

std::vector<int32_t> recall_question(int32_t key) {
  std::vector<int32_t> q(kRecallQuestionPrefix.begin(), kRecallQuestionPrefix.end());
  q.push_back(key);
  return q;
}

void generate_recall_testbed(const RecallTestbedOptions& o, const fs::path& out) {
  if (o.topics < 1 || o.topics > 64)
    throw std::invalid_argument("--topics must be in [1, 64] (codes have 128 dims, topics take one each)");
  if (!(o.topic_b >= 0 && o.topic_b < 1)) throw std::invalid_argument("--topic-b must be in [0, 1)");
  if (!(o.rope_theta > 1)) throw std::invalid_argument("--rope-theta must be above 1");
  fs::create_directories(out);
  for (const auto& entry : fs::directory_iterator(out))
    if (entry.path().extension() == ".safetensors") fs::remove(entry.path());
  fs::remove(out / "model.safetensors.index.json");

  const std::vector<TensorData> ts = make_weights(o);
  std::vector<const TensorData*> all;
  for (const TensorData& t : ts) all.push_back(&t);
  write_safetensors(out / "model.safetensors", all);

  // The same tokenizer `mnemo model new --arch llama --vocab 32000` writes, so
  // the directory loads wherever a generated model does. Its ids mean nothing
  // to this model: benchmarks feed token ids directly.
  const std::vector<std::string> specials = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                             "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>", "<|python_tag|>"};
  const json tok = train_byte_level_bpe(bundled_corpus(), kRecallVocab, specials, specials[0]);
  write_json(out / "tokenizer.json", tok);
  auto id_of = [&](const std::string& s) -> int64_t {
    for (const json& a : tok["added_tokens"])
      if (a["content"] == s) return a["id"].get<int64_t>();
    throw std::logic_error("trained tokenizer lacks special token " + s);
  };
  // How far the slow pairs stay nearly position free (0.33 rad of drift).
  const int64_t max_position = o.rope_theta >= 1e12f ? 131072 : 32768;
  json cfg = {{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"hidden_size", kHidden},
              {"num_hidden_layers", kLayers},
              {"num_attention_heads", kHeads},
              {"num_key_value_heads", kKvHeads},
              {"head_dim", kHeadDim},
              {"intermediate_size", kInter},
              {"vocab_size", kRecallVocab},
              {"max_position_embeddings", max_position},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", o.rope_theta},
              {"hidden_act", "silu"},
              {"attention_bias", false},
              {"tie_word_embeddings", false},
              {"torch_dtype", "float32"},
              {"bos_token_id", id_of("<|begin_of_text|>")},
              {"eos_token_id", {id_of("<|end_of_text|>"), id_of("<|eom_id|>"), id_of("<|eot_id|>")}},
              {"mnemo_generator",
               {{"arch", "recall-testbed"},
                {"topics", o.topics},
                {"topic_b", o.topic_b},
                {"robust", o.robust},
                {"seed", o.seed}}}};
  write_json(out / "config.json", cfg);
  write_json(out / "tokenizer_config.json", {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                             {"model_max_length", max_position},
                                             {"eos_token", "<|eot_id|>"},
                                             {"bos_token", "<|begin_of_text|>"},
                                             {"add_bos_token", true}});
}

}  // namespace mnemo::engine
