#include "engine/model/config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <nlohmann/json.hpp>

#include "engine/model/model_error.h"

namespace mnemo::engine {
namespace {

nlohmann::json base() {
  return {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64}, {"num_hidden_layers", 2},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"intermediate_size", 128},
          {"vocab_size", 300}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"eos_token_id", {1, 2}}};
}

std::string error_of(const nlohmann::json& j) {
  try {
    parse_config(j.dump(), "cfg.json");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, ParsesLlamaAndDerivesHeadDim) {
  const ModelConfig c = parse_config(base().dump(), "cfg.json");
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_FALSE(c.rope_scaling);
}

TEST(Config, Qwen2HasBiasesAndExplicitHeadDimWins) {
  auto j = base();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["head_dim"] = 32;
  const ModelConfig c = parse_config(j.dump(), "cfg.json");
  EXPECT_EQ(c.arch, Arch::Qwen2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(c.head_dim, 32);
}

TEST(Config, MistralSlidingWindowFollowsHuggingFaceDefaults) {
  auto j = base();
  j["architectures"] = {"MistralForCausalLM"};
  EXPECT_EQ(parse_config(j.dump(), "c").sliding_window, 4096);  // absent: MistralConfig's default
  j["sliding_window"] = nullptr;
  EXPECT_EQ(parse_config(j.dump(), "c").sliding_window, 0);
  j["sliding_window"] = 8;
  EXPECT_EQ(parse_config(j.dump(), "c").sliding_window, 8);
  j = base();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["use_sliding_window"] = true;
  EXPECT_NE(error_of(j).find("use_sliding_window"), std::string::npos);
  j["use_sliding_window"] = false;
  j["sliding_window"] = 4096;  // present in real Qwen2 configs, unused
  EXPECT_EQ(parse_config(j.dump(), "c").sliding_window, 0);
}

TEST(Config, ErrorsNameTheFileAndField) {
  auto j = base();
  j.erase("hidden_size");
  EXPECT_NE(error_of(j).find("cfg.json: field 'hidden_size' is missing"), std::string::npos) << error_of(j);

  j = base();
  j["num_attention_heads"] = "four";
  EXPECT_NE(error_of(j).find("'num_attention_heads' must be an integer"), std::string::npos) << error_of(j);

  j = base();
  j["num_key_value_heads"] = 3;
  EXPECT_NE(error_of(j).find("num_key_value_heads"), std::string::npos);

  j = base();
  j["architectures"] = {"GPT2LMHeadModel"};
  EXPECT_NE(error_of(j).find("unsupported architecture 'GPT2LMHeadModel'"), std::string::npos);

  j = base();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_NE(error_of(j).find("unsupported type 'yarn'"), std::string::npos);

  j = base();
  j["vocab_size"] = -5;
  EXPECT_NE(error_of(j).find("'vocab_size' is -5"), std::string::npos);

  j = base();
  j["hidden_size"] = 65;  // not a multiple of 4 heads, and no head_dim
  EXPECT_NE(error_of(j).find("hidden_size"), std::string::npos);

  EXPECT_THROW(parse_config("{not json", "cfg.json"), ModelError);
  EXPECT_THROW(parse_config("[1,2]", "cfg.json"), ModelError);
}

TEST(Config, RopeInvFreqWithoutScalingIsTheGeometricSeries) {
  const ModelConfig c = parse_config(base().dump(), "cfg.json");
  const auto inv = rope_inv_freq(c);
  ASSERT_EQ(inv.size(), 8u);
  for (size_t i = 0; i < inv.size(); ++i)
    EXPECT_NEAR(inv[i], std::pow(10000.0, -double(2 * i) / 16.0), 1e-6 * std::pow(10000.0, -double(2 * i) / 16.0));
}

// Llama 3.1 scaling keeps short wavelengths, divides long ones by the
// factor, and interpolates in between (values worked out by hand).
TEST(Config, RopeLlama3ScalingBands) {
  auto j = base();
  j["head_dim"] = 16;
  j["rope_theta"] = 10000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  const ModelConfig c = parse_config(j.dump(), "cfg.json");
  ASSERT_TRUE(c.rope_scaling);
  const auto inv = rope_inv_freq(c);
  for (size_t i = 0; i < inv.size(); ++i) {
    const double f = std::pow(10000.0, -double(2 * i) / 16.0);
    const double wavelen = 2 * std::numbers::pi / f;
    double want = f;
    if (wavelen > 64.0) want = f / 8.0;
    else if (wavelen >= 16.0) {
      const double s = (64.0 / wavelen - 1.0) / 3.0;
      want = (1 - s) * f / 8.0 + s * f;
    }
    EXPECT_NEAR(inv[i], want, 2e-6 * want) << "i=" << i;
  }
  // With original context 64 and theta 1e4, some frequency of each band exists.
  EXPECT_FLOAT_EQ(inv[0], 1.0f);
  EXPECT_NEAR(inv[7], std::pow(10000.0, -14.0 / 16.0) / 8.0, 1e-9);
}

}  // namespace
}  // namespace mnemo::engine
