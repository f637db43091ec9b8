// Behaviour of the tokenizer pieces on small hand-made tokenizer.json files.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/split_regex.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/utf8.h"

namespace mnemo::engine {
namespace {

std::vector<std::string> split_all(const char* pattern, const std::string& text) {
  SplitRegex re(pattern);
  std::vector<char32_t> cps;
  std::vector<size_t> off;
  for (size_t i = 0, len = 0; i < text.size(); i += len) {
    cps.push_back(utf8::decode(text, i, len));
    off.push_back(i);
  }
  off.push_back(text.size());
  std::vector<std::string> out;
  size_t from = 0, b, e;
  while (from <= cps.size() && re.find(cps, from, b, e)) {
    out.push_back(text.substr(off[b], off[e] - off[b]));
    from = e > b ? e : e + 1;
  }
  return out;
}

constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

TEST(SplitRegex, Llama3PatternSplitsWordsNumbersAndSpaces) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split_all(kLlama3, "Hello world's  1234567 x"),
            (V{"Hello", " world", "'s", " ", " ", "123", "456", "7", " x"}));
  EXPECT_EQ(split_all(kLlama3, "I'LL go\r\n\n  ok"), (V{"I", "'LL", " go", "\r\n\n", " ", " ok"}));
  EXPECT_EQ(split_all(kLlama3, "a  \tb"), (V{"a", "  ", "\tb"}));
  EXPECT_EQ(split_all(kLlama3, "ends   "), (V{"ends", "   "}));
  EXPECT_EQ(split_all(kLlama3, "x==>y;\n"), (V{"x", "==>", "y", ";\n"}));
  EXPECT_EQ(split_all(kLlama3, "日本語テキスト"), (V{"日本語テキスト"}));
}

TEST(SplitRegex, QuantifiersLookaroundAndErrors) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split_all("a{2,3}", "aaaaaaa"), (V{"aaa", "aaa"}));
  EXPECT_EQ(split_all("a+?", "aaa"), (V{"a", "a", "a"}));
  EXPECT_EQ(split_all("a(?=b)", "aab ab"), (V{"a", "a"}));
  EXPECT_EQ(split_all("[a-c]++c", "abcc"), (V{}));  // possessive never gives back
  EXPECT_EQ(split_all(R"(\P{L}+)", "ab12!c"), (V{"12!"}));
  EXPECT_THROW(SplitRegex("(ab"), TokenizerError);
  EXPECT_THROW(SplitRegex("[ab"), TokenizerError);
  EXPECT_THROW(SplitRegex(R"(\p{Bogus})"), TokenizerError);
  EXPECT_THROW(split_all("(a*)*b", std::string(64, 'a')), TokenizerError);
}

TEST(Unicode, CategoriesAndNfc) {
  EXPECT_TRUE(unicode::is_letter(U'é'));
  EXPECT_TRUE(unicode::is_letter(U'語'));
  EXPECT_TRUE(unicode::is_number(U'٣'));
  EXPECT_FALSE(unicode::is_letter(U'1'));
  EXPECT_TRUE(unicode::is_whitespace(0x3000));
  EXPECT_EQ(unicode::nfc("e\xCC\x81"), "\xC3\xA9");                  // e + acute -> é
  EXPECT_EQ(unicode::nfc("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"), "한");  // conjoining jamo
  EXPECT_EQ(unicode::nfc("a\xCC\xA3\xCC\x87"), "\xE1\xBA\xA1\xCC\x87");    // reordered, then composed
  EXPECT_EQ(unicode::nfc("caf" "e\xCC\x81 ok"), "caf\xC3\xA9 ok");              // mark after an ASCII run
  EXPECT_EQ(unicode::nfc("\xCC\x81" "abc"), "\xCC\x81" "abc");                     // a leading mark stays
  EXPECT_EQ(unicode::nfc("A\xCC\x8A\xE6\x97\xA5" "e\xCC\x81"), "\xC3\x85\xE6\x97\xA5\xC3\xA9");  // Å 日 é
}

TEST(Utf8, IncompleteTailAndLossy) {
  EXPECT_EQ(utf8::incomplete_tail("ab\xE6\x97"), 2u);
  EXPECT_EQ(utf8::incomplete_tail("ab\xE6\x97\xA5"), 0u);
  EXPECT_EQ(utf8::lossy("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8::lossy("\xE6\x97"), "\xEF\xBF\xBD");
}

nlohmann::json tiny_byte_level() {
  // Vocabulary: the letters used and a few merges; Ġ is the byte-level space.
  nlohmann::json vocab = {{"h", 0}, {"e", 1}, {"l", 2}, {"o", 3}, {"Ġ", 4}, {"w", 5}, {"r", 6}, {"d", 7},
                          {"he", 8}, {"ll", 9}, {"hell", 10}, {"hello", 11}, {"Ġw", 12}, {"or", 13}};
  return {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"h e", "l l", "he ll", "hell o", "Ġ w", "o r"}}}},
          {"added_tokens",
           {{{"id", 14}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
            {{"id", 15}, {"content", "<x>"}, {"special", false}, {"normalized", false}, {"lstrip", true}, {"rstrip", true}}}},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {14}}, {"tokens", {"<s>"}}}}}}}}};
}

TEST(Tokenizer, ByteLevelEncodeDecode) {
  const auto tok = Tokenizer::from_json(tiny_byte_level(), "tiny");
  using V = std::vector<int32_t>;
  EXPECT_EQ(tok.encode("hello world"), (V{14, 11, 12, 13, 2, 7}));
  EXPECT_EQ(tok.encode("hello world", false), (V{11, 12, 13, 2, 7}));
  EXPECT_EQ(tok.encode("<s>hello"), (V{14, 14, 11}));
  EXPECT_EQ(tok.encode("he  <x>  he", false), (V{8, 15, 8}));  // lstrip/rstrip absorb the spaces
  EXPECT_EQ(tok.encode("", true), (V{14}));
  EXPECT_EQ(tok.decode(V{14, 11, 12, 13, 2, 7}), "<s>hello world");
  EXPECT_EQ(tok.decode(V{14, 11, 12, 13, 2, 7}, true), "hello world");
  EXPECT_EQ(tok.vocab_size(), 16);
  EXPECT_EQ(tok.token_id("<x>"), 15);
  EXPECT_EQ(tok.token_id("hell"), 10);
  EXPECT_EQ(tok.token_id("nope"), std::nullopt);
  EXPECT_EQ(tok.id_to_token(12), "Ġw");
  EXPECT_TRUE(tok.is_special(14));
  EXPECT_FALSE(tok.is_special(15));
  EXPECT_FALSE(tok.is_special(3));
}

TEST(Tokenizer, SpecialTextCanBeEncodedAsPlainText) {
  auto j = tiny_byte_level();
  const auto tok = Tokenizer::from_json(j, "tiny");
  j["added_tokens"].erase(0);  // the same tokenizer without <s> as an added token
  j["post_processor"] = nullptr;
  const auto plain = Tokenizer::from_json(j, "tiny-without-s");
  using V = std::vector<int32_t>;
  EXPECT_EQ(tok.encode("he<s>llo", false), (V{8, 14, 9, 3}));
  EXPECT_EQ(tok.encode("he<s>llo", false, false), plain.encode("he<s>llo", false));
  EXPECT_EQ(tok.encode("he<x>llo", false, false), (V{8, 15, 9, 3}));  // non-special added tokens still match
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  const auto tok = Tokenizer::from_json(tiny_byte_level(), "tiny");
  const std::string text = "hello world he ll <x> hello <s>";
  const auto want = tok.encode(text);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) mismatches += tok.encode(text) != want;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Tokenizer, MalformedJsonNamesTheField) {
  auto expect_error = [](nlohmann::json j, const std::string& needle) {
    try {
      Tokenizer::from_json(j, "bad.json");
      ADD_FAILURE() << "no error for " << needle;
    } catch (const TokenizerError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto j = tiny_byte_level();
  j.erase("model");
  expect_error(j, "bad.json: model: missing");
  j = tiny_byte_level();
  j["model"]["type"] = "Unigram";
  expect_error(j, "model.type: unsupported model type 'Unigram'");
  j = tiny_byte_level();
  j["model"]["merges"].push_back("zz q");
  expect_error(j, "model.merges[6]");
  j = tiny_byte_level();
  j["pre_tokenizer"]["type"] = "Nonsense";
  expect_error(j, "pre_tokenizer.type: unsupported pre_tokenizer 'Nonsense'");
  j = tiny_byte_level();
  j["added_tokens"][0].erase("content");
  expect_error(j, "added_tokens[0].content: missing");
  EXPECT_THROW(Tokenizer::load("/nonexistent/tokenizer.json"), TokenizerError);
}

TEST(Tokenizer, StreamDecoderHoldsBackSplitCharacters) {
  // Byte tokens for the three bytes of "日" (E6 97 A5) arrive one at a time.
  nlohmann::json vocab = nlohmann::json::object();
  const auto& chars = std::vector<std::string>{"æ", "Ĺ", "¥", "a"};
  for (size_t i = 0; i < chars.size(); ++i) vocab[chars[i]] = i;
  nlohmann::json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
                      {"decoder", {{"type", "ByteLevel"}}}};
  const auto tok = Tokenizer::from_json(j, "bytes");
  ASSERT_EQ(tok.decode(std::vector<int32_t>{3, 0, 1, 2, 3}), "a日a");
  Tokenizer::StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(3), "a");
  EXPECT_EQ(stream.push(0), "");
  EXPECT_EQ(stream.push(1), "");
  EXPECT_EQ(stream.push(2), "日");
  EXPECT_EQ(stream.push(3), "a");
  EXPECT_EQ(stream.push(0), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace mnemo::engine
