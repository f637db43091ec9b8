// The scoring pass and the layer key similarity: against the PyTorch
// reference (tests/reference/score_reference.py, goldens in
// tests/golden/scores/), and their contracts: the cache is only read, scores
// are softmax weights, bad input is refused.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/model/attention_scores.h"
#include "engine/model/model.h"
#include "kernels/cpu/matmul.h"
#include "tests/engine/golden_model.h"

namespace mnemo::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using kernels::cpu::MatmulPrecision;

// Exact for the whole test: the reference bounds presume f32 arithmetic.
class ExactPrecision : public ::testing::Test {
 protected:
  void SetUp() override { kernels::cpu::set_matmul_precision(MatmulPrecision::Exact); }
  void TearDown() override { kernels::cpu::set_matmul_precision(MatmulPrecision::Fast); }
};

kv::KvConfig cache_config(const ModelConfig& c, int64_t blocks_per_layer) {
  kv::KvConfig kc;
  kc.layers = c.num_layers;
  kc.kv_heads = c.num_kv_heads;
  kc.head_dim = c.head_dim;
  kc.block_size = 16;
  kc.dtype = kv::KvDType::F32;  // compared with the f32 reference's goldens at 1e-4
  kc.bytes_budget = c.num_layers * kc.bytes_per_block() * blocks_per_layer;
  return kc;
}

// A committed paged sequence holding `tokens`, written by the engine's forward.
kv::SeqId prefill(const Model& model, kv::KvCacheManager& cache, std::span<const int32_t> tokens) {
  const kv::SeqId s = cache.create();
  EXPECT_TRUE(cache.append(s, tokens));
  Model::BatchItem item;
  item.tokens = tokens;
  item.paged = &cache;
  item.seq = s;
  model.forward_batch(std::span(&item, 1));
  cache.commit(s);
  return s;
}

// ---------------------------------------------------------------- goldens

float golden_float(const json& v) {
  return v.is_string() ? -std::numeric_limits<float>::infinity() : v.get<float>();
}

// Worst over (layer, kv head) of max|got - want| / max|want| over finite
// slots; a slot -inf on one side only fails outright.
double scores_rel_err(const SlotScores& got, const json& want) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t l = 0; l < std::min(got.size(), want.size()); ++l) {
    EXPECT_EQ(got[l].size(), want[l].size()) << "layer " << l;
    for (size_t h = 0; h < std::min(got[l].size(), want[l].size()); ++h) {
      const json& w = want[l][h];
      EXPECT_EQ(got[l][h].size(), w.size()) << "layer " << l << " head " << h;
      if (got[l][h].size() != w.size()) return 1e9;
      double diff = 0, scale = 0;
      for (size_t j = 0; j < w.size(); ++j) {
        const float e = golden_float(w[j]), g = got[l][h][j];
        if (std::isinf(e) || std::isinf(g)) {
          EXPECT_EQ(e, g) << "layer " << l << " head " << h << " slot " << j;
          continue;
        }
        diff = std::max(diff, std::fabs(double(g) - e));
        scale = std::max(scale, std::fabs(double(e)));
      }
      if (scale > 0) worst = std::max(worst, diff / scale);
    }
  }
  return worst;
}

class ScoreGolden : public ::testing::TestWithParam<fs::path> {
 protected:
  void SetUp() override { kernels::cpu::set_matmul_precision(MatmulPrecision::Exact); }
  void TearDown() override { kernels::cpu::set_matmul_precision(MatmulPrecision::Fast); }
};

TEST(ScoreGoldenSet, Present) { EXPECT_GE(testing::goldens_in("scores").size(), 3u); }

TEST_P(ScoreGolden, ScoresAndSimilarityMatchReference) {
  const json g = testing::read_golden(GetParam());
  const auto model = testing::load_golden_model(g, "scores_" + GetParam().stem().string(),
                                                "regenerate with tests/reference/score_reference.py");
  ASSERT_TRUE(model);
  const ModelConfig& c = model->config();
  const double tol = g["tolerance"]["scores_max_rel_err"].get<double>();
  const auto history = g["history"].get<std::vector<int32_t>>();
  bool compacted_run = false;
  for (const json& run : g["runs"]) {
    kv::KvCacheManager cache(cache_config(c, 16));
    const kv::SeqId s = prefill(*model, cache, history);
    for (auto it = run["keep"].begin(); it != run["keep"].end(); ++it) {
      const auto keep = it.value().get<std::vector<std::vector<int32_t>>>();
      ASSERT_TRUE(cache.compact(s, std::stoll(it.key()), keep));
      compacted_run = true;
    }
    const auto queries = run["queries"].get<std::vector<int32_t>>();
    const double e_max = scores_rel_err(score_slots(*model, cache, s, queries, ScoreReduce::Max), run["scores_max"]);
    const double e_sum = scores_rel_err(score_slots(*model, cache, s, queries, ScoreReduce::Sum), run["scores_sum"]);
    const double e_mean =
        scores_rel_err(score_slots(*model, cache, s, queries, ScoreReduce::MeanLogit), run["scores_mean_logit"]);
    std::printf("%s/%s: scores max rel err %.3g (Max), %.3g (Sum), %.3g (MeanLogit), bound %.3g\n",
                g["case"].get<std::string>().c_str(), run["name"].get<std::string>().c_str(), e_max, e_sum, e_mean, tol);
    EXPECT_LE(e_max, tol) << run["name"];
    EXPECT_LE(e_sum, tol) << run["name"];
    EXPECT_LE(e_mean, tol) << run["name"];
  }
  if (g["case"] == "scores_llama") {
    EXPECT_TRUE(compacted_run);
  }

  const json& sim = g["similarity"];
  const auto text = sim["text"].get<std::vector<int32_t>>();
  const auto sigma = layer_key_similarity(*model, text, sim["sinks"].get<int64_t>(), sim["window"].get<int64_t>());
  ASSERT_EQ(sigma.size(), sim["sigma"].size());
  const double sigma_tol = g["tolerance"]["sigma_max_abs_err"].get<double>();
  for (size_t l = 0; l < sigma.size(); ++l) {
    std::printf("%s: sigma[%zu] = %.7f (reference %.7f)\n", g["case"].get<std::string>().c_str(), l, sigma[l],
                sim["sigma"][l].get<double>());
    EXPECT_NEAR(sigma[l], sim["sigma"][l].get<double>(), sigma_tol) << "layer " << l;
  }
  EXPECT_NEAR(sigma[0], 1.0, 1e-6) << "layer 0's keys come before any attention";
}

INSTANTIATE_TEST_SUITE_P(Goldens, ScoreGolden, ::testing::ValuesIn(testing::goldens_in("scores")),
                         [](const auto& info) { return info.param.stem().string(); });

// ---------------------------------------------------------------- contracts

class ScoreContract : public ExactPrecision {
 protected:
  void SetUp() override {
    ExactPrecision::SetUp();
    dir_ = testing::fresh_dir("score_contract");
    testing::TinyModel().write(dir_);
    model_ = Model::load(dir_);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    ExactPrecision::TearDown();
  }
  std::vector<int32_t> tokens(size_t n, uint32_t seed) const {
    return testing::random_tokens(n, seed, model_->config().vocab_size);
  }
  fs::path dir_;
  std::unique_ptr<Model> model_;
};

TEST_F(ScoreContract, CacheIsOnlyRead) {
  kv::KvCacheManager cache(cache_config(model_->config(), 16));
  const auto history = tokens(45, 1);
  const kv::SeqId s = prefill(*model_, cache, history);
  // Uneven counts: head 1 of layer 1 has a hole at slots [4, 6).
  ASSERT_TRUE(cache.compact(s, 1, std::vector<std::vector<int32_t>>{{0, 3, 4, 9, 20, 44}, {1, 2, 5, 40}}));
  const auto bytes = cache.export_sequence(s);
  const std::vector<int32_t> toks(cache.tokens(s).begin(), cache.tokens(s).end());
  const int64_t len0 = cache.length(s, 0), len1 = cache.length(s, 1), free_blocks = cache.num_free_blocks();
  for (size_t m : {3, 40}) {  // GEMV and GEMM paths
    const auto q = tokens(m, 2);
    const auto scores = score_slots(*model_, cache, s, q, ScoreReduce::Max);
    ASSERT_EQ(scores.size(), 2u);
    EXPECT_EQ(scores[0][0].size(), size_t(len0));
    ASSERT_EQ(scores[1][1].size(), size_t(len1));
    ASSERT_EQ(len1, 6);
    for (int64_t j = 0; j < 6; ++j) {
      if (j >= 4) {
        EXPECT_EQ(scores[1][1][size_t(j)], -std::numeric_limits<float>::infinity()) << "hole slot " << j;
      } else {
        EXPECT_GT(scores[1][1][size_t(j)], 0.0f);
      }
      EXPECT_GT(scores[1][0][size_t(j)], 0.0f);
    }
  }
  EXPECT_EQ(cache.export_sequence(s), bytes) << "K, V, positions or tables changed";
  EXPECT_EQ(std::vector<int32_t>(cache.tokens(s).begin(), cache.tokens(s).end()), toks);
  EXPECT_EQ(cache.length(s, 0), len0);
  EXPECT_EQ(cache.length(s, 1), len1);
  EXPECT_EQ(cache.committed(s), int64_t(history.size()));
  EXPECT_EQ(cache.num_free_blocks(), free_blocks);
  cache.check_invariants();
}

TEST_F(ScoreContract, MaxScoresAreProbabilitiesAndSumIsSoftmaxMass) {
  const ModelConfig& c = model_->config();
  const int64_t group = c.num_heads / c.num_kv_heads;
  kv::KvCacheManager cache(cache_config(c, 16));
  const kv::SeqId s = prefill(*model_, cache, tokens(37, 3));
  for (size_t m : {1, 5, 33}) {
    const auto q = tokens(m, 4 + uint32_t(m));
    const auto mx = score_slots(*model_, cache, s, q, ScoreReduce::Max);
    const auto sum = score_slots(*model_, cache, s, q, ScoreReduce::Sum);
    for (size_t l = 0; l < mx.size(); ++l)
      for (size_t h = 0; h < mx[l].size(); ++h) {
        double mass = 0;
        for (size_t j = 0; j < mx[l][h].size(); ++j) {
          EXPECT_GE(mx[l][h][j], 0.0f);
          EXPECT_LE(mx[l][h][j], 1.0f);
          // The sum over queries and heads is at least their maximum.
          EXPECT_GE(sum[l][h][j], mx[l][h][j] * (1 - 1e-6f));
          mass += sum[l][h][j];
        }
        // Each query head's softmax over the cached slots has mass 1.
        EXPECT_NEAR(mass, double(m * group), 1e-4 * double(m * group)) << "layer " << l << " head " << h;
        if (m == 1) {
          // One query: Max is the largest of the group's softmax weights.
          const float top = *std::max_element(mx[l][h].begin(), mx[l][h].end());
          EXPECT_GE(top, 1.0f / float(mx[l][h].size()));
        }
      }
  }
}

TEST_F(ScoreContract, RefusesBadInput) {
  kv::KvCacheManager cache(cache_config(model_->config(), 16));
  const kv::SeqId s = prefill(*model_, cache, tokens(10, 5));
  const int32_t vocab = int32_t(model_->config().vocab_size);
  EXPECT_THROW(score_slots(*model_, cache, s, {}), std::invalid_argument);
  EXPECT_THROW(score_slots(*model_, cache, s, std::vector<int32_t>{1, vocab}), std::invalid_argument);
  EXPECT_THROW(score_slots(*model_, cache, s, std::vector<int32_t>{-1}), std::invalid_argument);
  ASSERT_TRUE(cache.append(s, std::vector<int32_t>{1}));  // appended, K,V not written
  EXPECT_THROW(score_slots(*model_, cache, s, std::vector<int32_t>{2}), std::invalid_argument);
  EXPECT_THROW(layer_key_similarity(*model_, {}, 1, 2), std::invalid_argument);
  EXPECT_THROW(layer_key_similarity(*model_, std::vector<int32_t>{1, vocab}, 1, 2), std::invalid_argument);
  EXPECT_THROW(layer_key_similarity(*model_, std::vector<int32_t>{1, 2}, 1, 0), std::invalid_argument);
  EXPECT_THROW(layer_key_similarity(*model_, std::vector<int32_t>{1, 2}, -1, 2), std::invalid_argument);
}

TEST_F(ScoreContract, SimilarityIsOneWhenTheRestrictionHidesNothing) {
  const auto text = tokens(30, 6);
  // sinks + window cover every distance: both runs are the same computation.
  for (double s : layer_key_similarity(*model_, text, 0, 30)) EXPECT_NEAR(s, 1.0, 1e-9);
  for (double s : layer_key_similarity(*model_, text, 10, 21)) EXPECT_NEAR(s, 1.0, 1e-9);
  const auto narrow = layer_key_similarity(*model_, text, 1, 2);
  EXPECT_NEAR(narrow[0], 1.0, 1e-9);
  EXPECT_LT(narrow[1], 0.9999) << "a 2-token window must change layer 1's keys";
}

// Not a test: the cost at the sizes EpiCache and SnapKV need, on a 2-layer
// hidden-512 model. Run with --gtest_also_run_disabled_tests.
TEST(ScoreTiming, DISABLED_Hidden512) {
  const fs::path dir = testing::fresh_dir("score_timing");
  const std::string cmd = std::string(MNEMO_BINARY_DIR) + "/mnemo model new --hidden 512 --layers 2 --heads 8 "
                          "--kv-heads 2 --intermediate 1024 --vocab 1000 --dtype f32 --seed 1 --out '" +
                          dir.string() + "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto model = Model::load(dir);
  for (int64_t n : {4096, 32768}) {
    kv::KvCacheManager cache(cache_config(model->config(), n / 16 + 8));
    std::vector<int32_t> history(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) history[size_t(i)] = int32_t((i * 7919) % 1000);
    // Random K,V instead of a prefill (a 32k prefill takes minutes here):
    // the cost of scoring does not depend on the values.
    const kv::SeqId s = cache.create();
    ASSERT_TRUE(cache.append(s, history));
    const ModelConfig& c = model->config();
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> kv(size_t(n * c.num_kv_heads * c.head_dim));
    for (float& f : kv) f = dist(rng);
    for (int64_t l = 0; l < c.num_layers; ++l) cache.write(s, l, n, kv.data(), kv.data());
    cache.commit(s);
    for (size_t m : {64, 512}) {
      const std::vector<int32_t> q(m, 5);
      const auto a = std::chrono::steady_clock::now();
      const auto sc = score_slots(*model, cache, s, q, ScoreReduce::Max);
      const auto b = std::chrono::steady_clock::now();
      std::printf("score_slots m=%zu over %lld slots: %.3f s\n", m, (long long)n,
                  std::chrono::duration<double>(b - a).count());
      ASSERT_EQ(sc[1][0].size(), size_t(n));
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mnemo::engine
