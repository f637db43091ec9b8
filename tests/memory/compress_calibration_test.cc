// Layer sensitivity calibration: measured once, stored beside the model with
// a fingerprint, reloaded, re-measured when stale, kept in memory when the
// location cannot be written.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "engine/model/attention_scores.h"
#include "engine/tokenizer/bundled_corpus.h"
#include "engine/tokenizer/tokenizer.h"
#include "memory/compress/layer_calibration.h"
#include "tests/memory/compress_test_model.h"

namespace mnemo::memory::compress {
namespace {

namespace fs = std::filesystem;
using Source = LayerBudgetCalibration::Source;

struct OwnModel {
  fs::path dir = testing::fresh_dir("calibration");
  std::unique_ptr<engine::Model> model;
  OwnModel() {
    testing::write_model(dir);
    model = engine::Model::load(dir);
  }
  ~OwnModel() { fs::remove_all(dir); }
};

CalibrationOptions small() {
  CalibrationOptions o;
  o.text_tokens = 96;
  o.sinks = 4;
  o.window = 16;
  return o;
}

TEST(CompressCalibration, MeasuredOnceStoredThenLoaded) {
  OwnModel m;
  const LayerBudgetCalibration first(*m.model, small());
  EXPECT_EQ(first.source(), Source::Computed);
  EXPECT_EQ(first.file(), m.dir / "mnemo_layer_sensitivity.json");
  ASSERT_TRUE(fs::exists(first.file()));
  ASSERT_EQ(first.sigma().size(), 2u);
  // The stored sigma is layer_key_similarity on the calibration tokens.
  const auto tokens = LayerBudgetCalibration::calibration_tokens(*m.model, 96);
  EXPECT_EQ(first.sigma(), engine::layer_key_similarity(*m.model, tokens, 4, 16));
  for (double s : first.sigma()) {
    EXPECT_GT(s, -1.0001);
    EXPECT_LT(s, 1.0001);
  }
  std::ifstream in(first.file());
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("fingerprint"), first.fingerprint());
  EXPECT_EQ(j.at("sinks"), 4);
  EXPECT_EQ(j.at("window"), 16);

  const LayerBudgetCalibration again(*m.model, small());
  EXPECT_EQ(again.source(), Source::Loaded);
  EXPECT_EQ(again.sigma(), first.sigma());
  const auto b = again.budgets(64);
  EXPECT_EQ(b[0] + b[1], 128);
}

TEST(CompressCalibration, StaleWhenTheCalibrationOrTheWeightsChange) {
  OwnModel m;
  const LayerBudgetCalibration first(*m.model, small());
  CalibrationOptions other = small();
  other.window = 32;
  const LayerBudgetCalibration changed(*m.model, other);
  EXPECT_EQ(changed.source(), Source::Computed);
  EXPECT_NE(changed.fingerprint(), first.fingerprint());
  // The file now holds the window-32 measurement; the window-16 one is stale.
  const LayerBudgetCalibration back(*m.model, small());
  EXPECT_EQ(back.source(), Source::Computed);
  EXPECT_EQ(back.fingerprint(), first.fingerprint());
  // New weights (a later modification time) invalidate it too.
  for (const auto& e : fs::directory_iterator(m.dir))
    if (e.path().extension() == ".safetensors")
      fs::last_write_time(e.path(), fs::last_write_time(e.path()) + std::chrono::seconds(5));
  const LayerBudgetCalibration touched(*m.model, small());
  EXPECT_EQ(touched.source(), Source::Computed);
  EXPECT_NE(touched.fingerprint(), first.fingerprint());
  // A corrupt file is measured again, not trusted.
  std::ofstream(touched.file()) << "{not json";
  EXPECT_EQ(LayerBudgetCalibration(*m.model, small()).source(), Source::Computed);
}

TEST(CompressCalibration, UnwritableLocationKeepsItInMemory) {
  OwnModel m;
  const fs::path blocker = m.dir / "not_a_dir";
  std::ofstream(blocker) << "x";
  CalibrationOptions o = small();
  o.file = blocker / "sensitivity.json";
  const LayerBudgetCalibration first(*m.model, o);
  EXPECT_EQ(first.source(), Source::Memory);
  ASSERT_EQ(first.sigma().size(), 2u);
  const LayerBudgetCalibration again(*m.model, o);
  EXPECT_EQ(again.source(), Source::Memory);
  EXPECT_EQ(again.sigma(), first.sigma());
}

TEST(CompressCalibration, TokensComeFromTheModelsTokenizerOnTheBundledCorpus) {
  const auto& m = testing::model();
  const auto t = LayerBudgetCalibration::calibration_tokens(m, 300);
  ASSERT_EQ(t.size(), 300u);
  EXPECT_EQ(t, LayerBudgetCalibration::calibration_tokens(m, 300));
  const auto enc = engine::Tokenizer::load(m.dir() / "tokenizer.json").encode(engine::bundled_corpus(), false);
  ASSERT_GE(enc.size(), 300u);
  EXPECT_EQ(t, std::vector<int32_t>(enc.begin(), enc.begin() + 300));
}

}  // namespace
}  // namespace mnemo::memory::compress
