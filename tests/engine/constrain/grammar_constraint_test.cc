// mask() against its definition: a token is allowed iff feeding its bytes
// into a copy of the current recogniser state succeeds. Checked token by
// token along random generations over a real 128k vocabulary, through
// string states (the plain-token shortcut) and structural ones.
#include "engine/constrain/grammar_constraint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <random>

namespace mnemo::engine {
namespace {

using Json = nlohmann::ordered_json;
const std::filesystem::path kFixtures = MNEMO_CONSTRAIN_FIXTURES;

TEST(GrammarConstraint, MaskMatchesFeedingEveryToken) {
  const Tokenizer tok = Tokenizer::load(kFixtures / "llama3.json");
  const auto vocab = TokenTrie::build(tok);
  const Json schema = Json::parse(R"({"type": "object", "properties": {
      "text": {"type": "string", "maxLength": 40},
      "tags": {"type": "array", "items": {"enum": ["a", "b c", 3]}, "maxItems": 3},
      "n": {"type": "number"}, "any": {"type": ["object", "null"]}}, "required": ["text", "n"]})");
  for (const bool close_tag : {false, true}) {
    GrammarLimits limits;
    limits.forbid_close_tag = close_tag;
    auto grammar = std::make_shared<Grammar>(limits);
    grammar->set_root(grammar->add_schema(schema));
    for (uint64_t seed = 0; seed < 3; ++seed) {
      GrammarConstraint c(vocab, {{std::nullopt, grammar}});
      Recognizer shadow(*grammar);
      std::mt19937_64 rng(seed);
      std::vector<float> logits(static_cast<size_t>(tok.vocab_size()));
      std::vector<double> times;
      std::string text;
      std::string slowest_at;
      for (int step = 0; step < 300 && !c.done(); ++step) {
        double best = 1e9;  // the fastest of a few runs, to see past a busy machine
        for (int run = 0; run < 3; ++run) {
          std::fill(logits.begin(), logits.end(), 0.0f);
          const auto t0 = std::chrono::steady_clock::now();
          c.mask(logits);
          best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        times.push_back(best);
        if (times.back() >= *std::max_element(times.begin(), times.end())) slowest_at = text;
        std::vector<int32_t> allowed;
        for (int32_t id = 0; id < tok.vocab_size(); ++id) {
          Recognizer r(shadow);
          const bool fits = vocab->in_trie(id) && r.feed(vocab->bytes(id));
          ASSERT_EQ(fits, !std::isinf(logits[static_cast<size_t>(id)]))
              << "token " << id << " '" << vocab->bytes(id) << "' at step " << step;
          if (fits) allowed.push_back(id);
        }
        ASSERT_FALSE(allowed.empty());
        const int32_t pick = allowed[rng() % allowed.size()];
        c.accept(pick);
        ASSERT_TRUE(shadow.feed(vocab->bytes(pick)));
        text += vocab->bytes(pick);
      }
      // Reported, not asserted.
      std::sort(times.begin(), times.end());
      std::cout << "llama3 vocab, seed " << seed << ": " << times.size() << " masks, median " << times[times.size() / 2] * 1e6
                << " us, slowest " << times.back() * 1e6 << " us after '" << slowest_at << "'\n";
    }
  }
}

TEST(GrammarConstraint, RejectsMalformedParts) {
  const Tokenizer tok = Tokenizer::load(kFixtures / "llama2.json");
  const auto vocab = TokenTrie::build(tok);
  auto g = std::make_shared<Grammar>();
  g->set_root(g->add_literal("x"));
  EXPECT_THROW(GrammarConstraint(vocab, {}), std::invalid_argument);
  EXPECT_THROW(GrammarConstraint(vocab, {{std::nullopt, g}, {std::nullopt, g}}), std::invalid_argument);
  EXPECT_THROW(GrammarConstraint(vocab, {{tok.vocab_size(), nullptr}}), std::invalid_argument);
  EXPECT_THROW(GrammarConstraint(vocab, {{std::nullopt, g}}, {-1}), std::invalid_argument);
  GrammarConstraint c(vocab, {{1, nullptr}, {std::nullopt, g}, {2, nullptr}});
  EXPECT_TRUE(c.allowed(1));
  EXPECT_FALSE(c.allowed(2));
  c.accept(1);
  EXPECT_THROW(c.accept(2), std::invalid_argument);
  c.accept(*tok.token_id("x"));
  EXPECT_TRUE(c.allowed(2));
  c.accept(2);
  EXPECT_TRUE(c.done());
  EXPECT_THROW(c.accept(2), std::invalid_argument);
}

}  // namespace
}  // namespace mnemo::engine
