// Token bytes and the vocabulary trie: bytes concatenate back to the text,
// the trie holds every ordinary token exactly once at the right path, and
// plain tokens are exactly those a JSON string takes whole.
#include "engine/constrain/token_trie.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "engine/constrain/recognizer.h"
#include "engine/tokenizer/bpe_trainer.h"
#include "engine/tokenizer/bundled_corpus.h"

namespace mnemo::engine {
namespace {

const std::filesystem::path kFixtures = MNEMO_CONSTRAIN_FIXTURES;

const char* const kSample = "Hello, world! {\"city\": \"Zürich\", \"n\": -12.5e3}\n\ttabs  and  spaces: 東京 😀 done";

TEST(TokenBytes, ConcatenateToTheEncodedText) {
  for (const char* name : {"llama3", "qwen3", "llama2"}) {
    const Tokenizer tok = Tokenizer::load(kFixtures / (std::string(name) + ".json"));
    std::string joined;
    for (const int32_t id : tok.encode(kSample, false)) joined += tok.token_bytes(id);
    // SentencePiece marks the start of the text with a space the decoder strips.
    if (std::string(name) == "llama2") {
      ASSERT_TRUE(joined.starts_with(" ")) << name;
      joined.erase(0, 1);
    }
    EXPECT_EQ(joined, kSample) << name;
  }
}

TEST(TokenBytes, AddedTokensGiveTheirContentAndArePartOfNoTrie) {
  const Tokenizer tok = Tokenizer::load(kFixtures / "qwen3.json");
  const int32_t open = *tok.token_id("<tool_call>");
  EXPECT_TRUE(tok.is_added(open));
  EXPECT_FALSE(tok.is_special(open));
  EXPECT_EQ(tok.token_bytes(open), "<tool_call>");
  const auto trie = TokenTrie::build(tok);
  EXPECT_FALSE(trie->in_trie(open));
  EXPECT_FALSE(trie->in_trie(*tok.token_id("<|im_end|>")));
  EXPECT_TRUE(trie->in_trie(tok.encode("hello", false)[0]));
}

TEST(TokenTrie, HoldsEveryOrdinaryTokenAtItsPath) {
  const Tokenizer tok = Tokenizer::from_json(
      train_byte_level_bpe(bundled_corpus(), 1024, {"<|endoftext|>", "<tool_call>"}, std::nullopt), "<generated>");
  const auto trie = TokenTrie::build(tok);
  const auto& t = trie->all();
  std::map<int32_t, int> seen;
  std::vector<std::string> path(t.max_depth + 1u);
  for (size_t i = 1; i < t.nodes.size(); ++i) {
    const auto& n = t.nodes[i];
    ASSERT_GT(n.end, i);
    ASSERT_LE(n.end, t.nodes.size());
    path[n.depth] = path[n.depth - 1u] + static_cast<char>(n.byte);
    for (uint32_t k = n.tokens_begin; k < n.tokens_end; ++k) {
      EXPECT_EQ(trie->bytes(t.ids[k]), path[n.depth]);
      ++seen[t.ids[k]];
    }
  }
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const bool ordinary = !tok.is_added(id);
    EXPECT_EQ(seen.count(id), ordinary ? 1u : 0u) << id;
    if (ordinary) { EXPECT_EQ(seen[id], 1); }
  }
  // Every single byte is a token of a byte-level vocabulary.
  size_t children = 0;
  for (size_t j = 1; j < t.nodes.size(); j = t.nodes[j].end) {
    EXPECT_EQ(t.nodes[j].depth, 1);
    EXPECT_GT(t.nodes[j].tokens_end, t.nodes[j].tokens_begin);
    ++children;
  }
  EXPECT_EQ(children, 256u);
}

TEST(TokenTrie, PlainTokensAreWhatAStringTakesWhole) {
  const Tokenizer tok = Tokenizer::load(kFixtures / "llama3.json");
  const auto trie = TokenTrie::build(tok);
  Grammar g;
  g.set_root(g.add_schema(nlohmann::ordered_json::parse(R"({"type": "string"})")));
  Recognizer start(g);
  ASSERT_TRUE(start.feed('"'));
  std::vector<bool> plain(static_cast<size_t>(tok.vocab_size()));
  uint32_t last = 0;
  for (const auto& p : trie->plain()) {
    plain[static_cast<size_t>(p.id)] = true;
    EXPECT_GE(p.chars, last);
    last = p.chars;
  }
  size_t checked = 0;
  for (int32_t id = 0; id < tok.vocab_size(); id += 7) {
    if (!trie->in_trie(id)) continue;
    const std::string& b = trie->bytes(id);
    Recognizer r(start);
    bool after_lt = false;
    const bool whole = r.feed(b) && r.in_plain_string(last, after_lt);
    // Plain: taken whole and leaves the string open between characters.
    // Other tokens taken whole hold escapes or "</".
    if (plain[static_cast<size_t>(id)]) { EXPECT_TRUE(whole) << b; }
    else if (b.find("</") == std::string::npos && b.find('\\') == std::string::npos) { EXPECT_FALSE(whole) << b; }
    ++checked;
  }
  EXPECT_GT(checked, 10000u);
  EXPECT_GT(trie->plain().size(), 100000u);
}

}  // namespace
}  // namespace mnemo::engine
