#include <gtest/gtest.h>

#include "engine/tokenizer/bpe_trainer.h"
#include "engine/tokenizer/bundled_corpus.h"
#include "engine/tokenizer/tokenizer.h"

namespace mnemo::engine {
namespace {

const std::vector<std::string> kLlamaSpecials = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                                 "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>", "<|python_tag|>"};

TEST(BpeTrainer, SmallVocabIsExactAndRoundTrips) {
  const auto j = train_byte_level_bpe(bundled_corpus(), 300, kLlamaSpecials, "<|begin_of_text|>");
  const auto tok = Tokenizer::from_json(j, "trained");
  EXPECT_EQ(tok.vocab_size(), 300);
  EXPECT_EQ(j["model"]["vocab"].size(), 293u);
  EXPECT_EQ(tok.token_id("<|begin_of_text|>"), 293);
  EXPECT_EQ(tok.token_id("<|python_tag|>"), 299);
  EXPECT_TRUE(tok.is_special(299));
  const std::string text = "Hello, world! It's 2026.\n\tdef f(x): return x * 2  # ok";
  const auto ids = tok.encode(text);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 293);
  EXPECT_EQ(tok.decode(ids, true), text);
  EXPECT_LT(tok.encode(text, false).size(), text.size());  // merges were learned and used
}

TEST(BpeTrainer, DeterministicAndNoPlaceholdersUpTo4096) {
  const auto a = train_byte_level_bpe(bundled_corpus(), 4096, kLlamaSpecials, "<|begin_of_text|>");
  const auto b = train_byte_level_bpe(bundled_corpus(), 4096, kLlamaSpecials, "<|begin_of_text|>");
  EXPECT_EQ(a.dump(), b.dump());
  EXPECT_EQ(a["model"]["vocab"].size(), 4096u - kLlamaSpecials.size());
  EXPECT_EQ(a["added_tokens"].size(), kLlamaSpecials.size());
  EXPECT_EQ(Tokenizer::from_json(a, "trained").vocab_size(), 4096);
}

TEST(BpeTrainer, LargeVocabPadsWithReservedSpecials) {
  const auto j = train_byte_level_bpe(bundled_corpus(), 32000, {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}, std::nullopt);
  const auto tok = Tokenizer::from_json(j, "trained");
  EXPECT_EQ(tok.vocab_size(), 32000);
  EXPECT_EQ(tok.id_to_token(31999).rfind("<|reserved_", 0), 0u);
  EXPECT_TRUE(tok.is_special(31999));
  const auto ids = tok.encode("<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(ids.front(), *tok.token_id("<|im_start|>"));  // no BOS without bos_token
  EXPECT_EQ(ids.back(), *tok.token_id("<|im_end|>"));
}

TEST(BpeTrainer, RejectsImpossibleArguments) {
  EXPECT_THROW(train_byte_level_bpe("abc", 258, kLlamaSpecials, std::nullopt), TokenizerError);
  EXPECT_THROW(train_byte_level_bpe("abc", 400, {"<a>"}, "<b>"), TokenizerError);
}

TEST(BundledCorpus, IsSubstantialText) {
  EXPECT_GT(bundled_corpus().size(), 20000u);
  EXPECT_NE(bundled_corpus().find("assistant"), std::string_view::npos);
}

}  // namespace
}  // namespace mnemo::engine
