// The same generated model decoding with a BF16 KV cache and with an F32 one:
// logits within the bf16 bound (both attention paths: a 40-token prefill
// gathers blocks for the GEMMs, decode reads blocks in place), and the
// engine's accounting of the halved bytes.
//
// Bound. bf16 keeps 8 significant bits: each stored key and value is off by
// at most 2^-9 relative. In a layer, logits q.k/sqrt(d) then move by at most
// delta = 2^-9 * sum_i |q_i k_i| / sqrt(d), the softmax weights by at most
// e^(2 delta) - 1 in total, so the attention output moves by at most
// (e^(2 delta) - 1 + 2^-9) * max |v|, i.e. about (2 delta + 2^-9) relative.
// With the attention logits of these models (|q.k|/sqrt(d) of a few units,
// delta about 2^-9 * 1.5) that is < 4 * 2^-9 per layer; the residual stream
// carries each layer's error forward, to first order neither amplified nor
// cancelled, so the logits move by at most about layers * 4 * 2^-9 relative
// to their largest magnitude (0.023 for 3 layers): the same order as the
// 0.02 the goldens allow bf16 GEMM inputs, which round far more numbers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "engine/kv/kv_cache_manager.h"
#include "engine/model/generator.h"
#include "engine/model/model.h"
#include "engine/serving/engine.h"
#include "engine/tokenizer/tokenizer.h"
#include "kernels/cpu/matmul.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::engine {
namespace {

constexpr int64_t kLayers = 3, kPrompt = 40, kDecode = 30;

struct Fixture {
  std::filesystem::path dir = testing::fresh_dir("kv_dtype");
  std::unique_ptr<Model> model;
  Fixture() {
    GeneratorOptions o;
    o.hidden = 128, o.layers = kLayers, o.heads = 4, o.kv_heads = 2, o.intermediate = 256, o.vocab = 300, o.seed = 11;
    o.dtype = kernels::DType::F32;
    generate_model(o, dir);
    model = Model::load(dir);
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
};

Fixture& fx() {
  static Fixture f;
  return f;
}

// Logits rows: every prompt position, then each teacher-forced decode step.
std::vector<std::vector<float>> run(kv::KvDType dtype, const std::vector<int32_t>& tokens) {
  const Model& m = *fx().model;
  const ModelConfig& c = m.config();
  kv::KvConfig kc;
  kc.layers = c.num_layers, kc.kv_heads = c.num_kv_heads, kc.head_dim = c.head_dim, kc.block_size = 16;
  kc.dtype = dtype;
  kc.bytes_budget = 8 * kc.layers * kc.bytes_per_block();
  kv::KvCacheManager cache(kc);
  const kv::SeqId s = cache.create();
  const int64_t V = c.vocab_size;
  std::vector<std::vector<float>> rows;
  auto step = [&](std::span<const int32_t> t, bool all) {
    EXPECT_TRUE(cache.append(s, t));
    const Model::BatchItem item{t, nullptr, all, &cache, s};
    const std::vector<float> logits = m.forward_batch(std::span(&item, 1));
    cache.commit(s);
    for (size_t r = 0; r < logits.size() / size_t(V); ++r)
      rows.emplace_back(logits.begin() + ptrdiff_t(r * size_t(V)), logits.begin() + ptrdiff_t((r + 1) * size_t(V)));
  };
  step(std::span(tokens).first(kPrompt), true);
  for (int64_t j = 0; j < kDecode; ++j) step(std::span(tokens).subspan(size_t(kPrompt + j), 1), false);
  return rows;
}

TEST(KvDtype, Bf16LogitsStayWithinTheBoundOfF32) {
  kernels::cpu::set_matmul_precision(kernels::cpu::MatmulPrecision::Exact);  // only the KV type differs
  std::mt19937 rng(4);
  std::vector<int32_t> tokens(size_t(kPrompt + kDecode));
  for (int32_t& t : tokens) t = int32_t(rng() % 300);
  const auto f32 = run(kv::KvDType::F32, tokens), bf16 = run(kv::KvDType::BF16, tokens);
  ASSERT_EQ(f32.size(), size_t(kPrompt + kDecode));
  ASSERT_EQ(bf16.size(), f32.size());
  const double bound = double(kLayers) * 4.0 / 512.0;
  double worst_prefill = 0, worst_decode = 0;
  size_t argmax_agree = 0;
  for (size_t r = 0; r < f32.size(); ++r) {
    double diff = 0, mag = 0;
    for (size_t i = 0; i < f32[r].size(); ++i) {
      diff = std::max(diff, double(std::abs(bf16[r][i] - f32[r][i])));
      mag = std::max(mag, double(std::abs(f32[r][i])));
    }
    const double rel = diff / mag;
    EXPECT_LE(rel, bound) << "row " << r;
    (r < size_t(kPrompt) ? worst_prefill : worst_decode) = std::max(r < size_t(kPrompt) ? worst_prefill : worst_decode, rel);
    argmax_agree += std::max_element(f32[r].begin(), f32[r].end()) - f32[r].begin() ==
                    std::max_element(bf16[r].begin(), bf16[r].end()) - bf16[r].begin();
  }
  std::printf("bf16 KV against f32 KV: max relative logit error %.3g prefill, %.3g decode (bound %.3g); "
              "argmax agrees on %zu of %zu rows\n",
              worst_prefill, worst_decode, bound, argmax_agree, f32.size());
  // The bf16 cache really ran: row 0 attends to itself only, but later rows
  // read rounded keys and values of other tokens.
  EXPECT_GT(worst_decode, 0.0);
  EXPECT_GT(worst_prefill, 0.0);
}

TEST(KvDtype, EngineCountsHalfTheBytesAndTwiceTheTokens) {
  const Tokenizer tok = Tokenizer::load(fx().dir / "tokenizer.json");
  const ModelConfig& c = fx().model->config();
  const int64_t f32_per_token = 2 * kLayers * c.num_kv_heads * c.head_dim * 4;
  EngineOptions a, b;
  a.kv_cache_bytes = b.kv_cache_bytes = 100 * 16 * f32_per_token;  // 100 blocks of f32
  a.kv_dtype = kernels::KvDType::F32;
  b.kv_dtype = kernels::KvDType::BF16;
  Engine f32(*fx().model, tok, a), bf16(*fx().model, tok, b);
  EXPECT_EQ(f32.kv_bytes_per_token(), f32_per_token);
  EXPECT_EQ(bf16.kv_bytes_per_token(), f32_per_token / 2);
  EXPECT_EQ(f32.kv_capacity_tokens(), 1600);
  EXPECT_EQ(bf16.kv_capacity_tokens(), 3200);
  EXPECT_EQ(EngineOptions{}.kv_dtype, kernels::KvDType::BF16) << "bf16 is the default";
}

}  // namespace
}  // namespace mnemo::engine
