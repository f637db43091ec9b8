// Loading a model: every inconsistency is a ModelError naming the file and
// the tensor or field; a valid model runs and its KV cache is exact.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "engine/model/model.h"
#include "engine/model/model_error.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::engine {
namespace {

using testing::fresh_dir;
using testing::TinyModel;

std::string load_error(const std::filesystem::path& dir) {
  try {
    Model::load(dir);
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

TEST(Weights, LoadsAndRunsAValidModel) {
  const auto dir = fresh_dir("valid");
  TinyModel().write(dir);
  const auto m = Model::load(dir);
  KvCache cache = m->new_cache();
  const std::vector<int32_t> toks{1, 5, 7, 39};
  const auto logits = m->forward(toks, cache, true);
  ASSERT_EQ(logits.size(), 4u * 40u);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  EXPECT_EQ(cache.length(), 4);
  EXPECT_THROW(m->forward(std::vector<int32_t>{40}, cache), std::invalid_argument);
}

TEST(Weights, IncrementalDecodeMatchesOneShotForward) {
  const auto dir = fresh_dir("incr");
  TinyModel().write(dir);
  const auto m = Model::load(dir);
  const std::vector<int32_t> toks{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4};
  KvCache whole = m->new_cache(1);  // capacity 1 forces the cache to grow
  const auto all = m->forward(toks, whole, true);
  KvCache inc = m->new_cache(1);
  m->forward(std::span(toks).first(7), inc);
  for (size_t t = 7; t < toks.size(); ++t) {
    const auto step = m->forward(std::span(toks).subspan(t, 1), inc);
    for (size_t i = 0; i < 40; ++i) ASSERT_NEAR(step[i], all[t * 40 + i], 1e-4f) << "position " << t;
  }
}

TEST(Weights, MappedAndResidentWeightsGiveIdenticalLogits) {
  const auto dir = fresh_dir("residency");
  TinyModel().write(dir);
  const auto mapped = Model::load(dir, Residency::Mapped);
  const auto resident = Model::load(dir, Residency::Resident);
  EXPECT_NE(mapped->weights().embed.data, resident->weights().embed.data);
  const std::vector<int32_t> toks{4, 8, 15, 16, 23, 42 % 40};
  KvCache a = mapped->new_cache(), b = resident->new_cache();
  EXPECT_EQ(mapped->forward(toks, a, true), resident->forward(toks, b, true));
}

TEST(Weights, MissingTensorIsNamed) {
  const auto dir = fresh_dir("missing");
  TinyModel t;
  t.tensors.erase("model.layers.1.mlp.up_proj.weight");
  t.write(dir);
  EXPECT_NE(load_error(dir).find("tensor 'model.layers.1.mlp.up_proj.weight' is missing"), std::string::npos)
      << load_error(dir);
}

TEST(Weights, WrongShapeIsNamed) {
  const auto dir = fresh_dir("shape");
  TinyModel t;
  t.add("model.layers.0.self_attn.k_proj.weight", {32, 32});
  t.write(dir);
  const std::string e = load_error(dir);
  EXPECT_NE(e.find("model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight' has shape [32, 32] but the config needs [16, 32]"),
            std::string::npos)
      << e;
}

TEST(Weights, TiedEmbeddingsNeedNoLmHead) {
  const auto dir = fresh_dir("tied");
  TinyModel t;
  t.tensors.erase("lm_head.weight");
  t.write(dir);
  EXPECT_NE(load_error(dir).find("lm_head.weight"), std::string::npos);
  t.config["tie_word_embeddings"] = true;
  t.write(dir);
  const auto m = Model::load(dir);
  EXPECT_EQ(m->weights().lm_head.data, m->weights().embed.data);
}

TEST(Weights, TruncatedFileIsReported) {
  const auto dir = fresh_dir("trunc");
  TinyModel().write(dir);
  const auto f = dir / "model.safetensors";
  std::filesystem::resize_file(f, std::filesystem::file_size(f) - 100);
  EXPECT_NE(load_error(dir).find("truncated file?"), std::string::npos) << load_error(dir);
  std::filesystem::resize_file(f, 5);
  EXPECT_NE(load_error(dir).find("truncated"), std::string::npos);
}

TEST(Weights, ShardIndexProblemsAreReported) {
  const auto dir = fresh_dir("index");
  TinyModel().write(dir);
  std::filesystem::rename(dir / "model.safetensors", dir / "a.safetensors");
  std::ofstream(dir / "model.safetensors.index.json") << R"({"weight_map": {"model.norm.weight": "b.safetensors"}})";
  EXPECT_NE(load_error(dir).find("b.safetensors: cannot open"), std::string::npos) << load_error(dir);
  std::ofstream(dir / "model.safetensors.index.json") << R"({"weight_map": {"model.norm.weight": "../a.safetensors"}})";
  EXPECT_NE(load_error(dir).find("outside the model directory"), std::string::npos);
  std::ofstream(dir / "model.safetensors.index.json") << R"({"metadata": {}})";
  EXPECT_NE(load_error(dir).find("'weight_map'"), std::string::npos);
}

TEST(Weights, BadConfigAndMissingFilesAreReported) {
  const auto dir = fresh_dir("cfg");
  TinyModel t;
  t.config["architectures"] = {"FalconForCausalLM"};
  t.write(dir);
  EXPECT_NE(load_error(dir).find("config.json: field 'architectures'"), std::string::npos);
  EXPECT_NE(load_error(dir / "nope").find("not a model directory"), std::string::npos);
  std::filesystem::remove(dir / "config.json");
  EXPECT_NE(load_error(dir).find("config.json: cannot open"), std::string::npos);
}

}  // namespace
}  // namespace mnemo::engine
