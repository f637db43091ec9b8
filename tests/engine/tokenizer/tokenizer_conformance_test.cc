// Token-for-token equality with the HF tokenizers library on real
// tokenizer.json files; expected outputs come from conformance/make_expected.sh.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/tokenizer.h"

namespace mnemo::engine {
namespace {

const std::filesystem::path kConformance = std::filesystem::path(MNEMO_SOURCE_DIR) / "tests/engine/tokenizer/conformance";

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot open " + p.string());
  return nlohmann::json::parse(in);
}

std::filesystem::path tokenizer_path(const std::string& name) {
  const auto unpacked = std::filesystem::path(MNEMO_TOKENIZER_FIXTURES) / (name + ".json");
  return std::filesystem::exists(unpacked) ? unpacked : kConformance / (name + ".json");
}

// llama2_metaspace is llama2.json rewritten to the Metaspace pre-tokenizer
// and decoder, exactly as make_expected.sh does.
// trained_512_gpt2 is trained_512.json with GPT-2's ByteLevel pre-tokenizer.
Tokenizer load_fixture(const std::string& name) {
  if (name == "trained_512_gpt2") {
    auto j = read_json(tokenizer_path("trained_512"));
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    return Tokenizer::from_json(j, name);
  }
  if (name != "llama2_metaspace") return Tokenizer::load(tokenizer_path(name));
  auto j = read_json(tokenizer_path("llama2"));
  const nlohmann::json metaspace = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}, {"split", false}};
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = metaspace;
  j["decoder"] = metaspace;
  return Tokenizer::from_json(j, name);
}

class Conformance : public testing::TestWithParam<std::string> {};

TEST_P(Conformance, MatchesHuggingFaceOnEveryCase) {
  const std::string name = GetParam();
  const auto expected = read_json(kConformance / "expected" / (name + ".json"));
  const auto tok = load_fixture(name);
  size_t checked = 0;
  for (const auto& c : expected["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE(name + " case " + std::to_string(checked) + ": " + c["text"].dump());
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text, true), ids);
    EXPECT_EQ(tok.encode(text, false), c["ids_no_special"].get<std::vector<int32_t>>());
    EXPECT_EQ(tok.decode(ids, false), c["decoded"].get<std::string>());
    EXPECT_EQ(tok.decode(ids, true), c["decoded_skip_special"].get<std::string>());
    ++checked;
  }
  EXPECT_GE(checked, 52u);
}

TEST_P(Conformance, StreamingDecodeEqualsFullDecode) {
  const std::string name = GetParam();
  const auto expected = read_json(kConformance / "expected" / (name + ".json"));
  const auto tok = load_fixture(name);
  for (const auto& c : expected["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    Tokenizer::StreamDecoder stream(tok);
    std::string text;
    for (int32_t id : ids) text += stream.push(id);
    text += stream.flush();
    EXPECT_EQ(text, c["decoded"].get<std::string>()) << c["text"].dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Conformance, testing::Values("llama3", "qwen3", "llama2", "llama2_metaspace", "trained_512",
                                                            "trained_512_gpt2"));

TEST(Conformance, SpecialTokenMetadata) {
  const auto llama3 = Tokenizer::load(tokenizer_path("llama3"));
  EXPECT_EQ(llama3.vocab_size(), 128256);
  EXPECT_EQ(llama3.token_id("<|eot_id|>"), 128009);
  EXPECT_TRUE(llama3.is_special(128009));
  EXPECT_EQ(llama3.id_to_token(9906), "Hello");
  const auto llama2 = Tokenizer::load(tokenizer_path("llama2"));
  EXPECT_EQ(llama2.token_id("<0x0A>"), 13);
  EXPECT_EQ(llama2.token_id("</s>"), 2);
}

}  // namespace
}  // namespace mnemo::engine
