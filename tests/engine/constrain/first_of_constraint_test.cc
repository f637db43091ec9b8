// A response format beside tools under tool_choice "auto": the model may
// start a tool call or the JSON answer, and the tokens it picks decide.
// Random logits (a random-weight model) must end in one valid call or one
// valid answer, never a mix, in a family whose call starts with a token
// (<tool_call>) and in one whose call is itself JSON (Llama 3).
#include "engine/constrain/first_of_constraint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/constrain/json_output_constraint.h"
#include "engine/constrain/tool_call_constraint.h"
#include "engine/tokenizer/bpe_trainer.h"
#include "engine/tokenizer/bundled_corpus.h"
#include "schema_validator.h"

namespace mnemo::engine {
namespace {

using Json = nlohmann::ordered_json;

const Json kTools = Json::parse(R"([{"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"q": {"type": "string", "maxLength": 8}}, "required": ["q"]}}}])");
const Json kAnswer = Json::parse(R"({"type": "object", "properties": {"answer": {"type": "string", "maxLength": 10},
    "score": {"type": "integer"}}, "required": ["answer", "score"], "additionalProperties": false})");

struct Vocab {
  Tokenizer tok;
  std::shared_ptr<const TokenTrie> vocab;
  ToolCallSyntax syntax;
  int32_t eos;
};

Vocab setup(bool chatml) {
  const std::vector<std::string> specials =
      chatml ? std::vector<std::string>{"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"}
             : std::vector<std::string>{"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|python_tag|>"};
  Tokenizer tok = Tokenizer::from_json(train_byte_level_bpe(bundled_corpus(), 2048, specials, std::nullopt), "<generated>");
  auto vocab = TokenTrie::build(tok);
  const int32_t eos = *tok.token_id(chatml ? "<|im_end|>" : "<|eot_id|>");
  return {std::move(tok), std::move(vocab), chatml ? ToolCallSyntax::Hermes : ToolCallSyntax::Llama3, eos};
}

std::unique_ptr<FirstOfConstraint> answer_or_call(const Vocab& s) {
  std::vector<std::unique_ptr<LogitsConstraint>> alts;
  alts.push_back(make_json_output_constraint(s.vocab, compile_json_output(&kAnswer, {.strict = true}), {s.eos}));
  alts.push_back(make_tool_call_constraint(s.vocab, s.tok, s.syntax, kTools, std::nullopt));
  return std::make_unique<FirstOfConstraint>(std::move(alts));
}

bool allowed(const LogitsConstraint& c, int32_t id, int32_t vocab) {
  std::vector<float> logits(static_cast<size_t>(vocab), 0.0f);
  c.mask(logits);
  return !std::isinf(logits[static_cast<size_t>(id)]);
}

TEST(FirstOfConstraint, TheFirstTokenChoosesCallOrAnswer) {
  const Vocab s = setup(true);
  const int32_t open = *s.tok.token_id("<tool_call>");
  const int32_t brace = s.tok.encode("{", false)[0];
  const int32_t letter = s.tok.encode("a", false)[0];
  auto c = answer_or_call(s);
  EXPECT_TRUE(allowed(*c, open, s.tok.vocab_size()));
  EXPECT_TRUE(allowed(*c, brace, s.tok.vocab_size()));
  EXPECT_FALSE(allowed(*c, letter, s.tok.vocab_size()));
  EXPECT_FALSE(allowed(*c, s.eos, s.tok.vocab_size()));
  EXPECT_THROW(c->accept(letter), std::invalid_argument);
  c->accept(open);
  EXPECT_EQ(c->live(), 1u);
  EXPECT_EQ(c->first_live(), 1u);  // the tool call
  EXPECT_FALSE(allowed(*c, brace, s.tok.vocab_size()));  // "\n" comes first after <tool_call>

  auto d = answer_or_call(s);
  d->accept(brace);
  EXPECT_EQ(d->live(), 1u);
  EXPECT_EQ(d->first_live(), 0u);  // the answer
  EXPECT_FALSE(allowed(*d, open, s.tok.vocab_size()));
}

TEST(FirstOfConstraint, RandomLogitsEndInOneCallOrOneAnswer) {
  for (const bool chatml : {true, false}) {
    const Vocab s = setup(chatml);
    int calls = 0, answers = 0;
    for (uint64_t seed = 0; seed < 30; ++seed) {
      auto c = answer_or_call(s);
      std::mt19937_64 rng(seed);
      std::uniform_real_distribution<float> u(-4.0f, 4.0f);
      std::vector<int32_t> ids;
      std::vector<float> logits(static_cast<size_t>(s.tok.vocab_size()));
      for (int step = 0; step < 2000 && !c->done(); ++step) {
        for (auto& l : logits) l = u(rng);
        c->mask(logits);
        const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
        ASSERT_FALSE(std::isinf(logits[static_cast<size_t>(best)])) << "no token allowed";
        c->accept(static_cast<int32_t>(best));
        ids.push_back(static_cast<int32_t>(best));
      }
      ASSERT_TRUE(c->done());
      if (ids.back() == s.eos) ids.pop_back();
      const std::string text = s.tok.decode(ids, false);
      ToolCallParser parser(s.syntax, 1);
      ToolCallDelta all = parser.push(text);
      ToolCallDelta end = parser.finish();
      all.calls.insert(all.calls.end(), end.calls.begin(), end.calls.end());
      all.text += end.text;
      // Llama 3 reads a reply that is a JSON object as a call; one that is
      // not a call comes back as its text (the daemon shows it as content).
      for (const auto* d : {&all, &end})
        for (const auto& e : d->errors) all.text += e.text;
      if (!all.calls.empty()) {
        ++calls;
        ASSERT_EQ(all.calls.size(), 1u) << text;
        EXPECT_EQ(all.calls[0].name, "lookup");
        EXPECT_EQ(all.text.find_first_not_of(" \n"), std::string::npos) << text;
      } else {
        ++answers;
        const Json v = Json::parse(all.text, nullptr, false);
        ASSERT_FALSE(v.is_discarded()) << text << "\nparser text: [" << all.text << "]";
        EXPECT_EQ(testing::validate(v, kAnswer), "") << text;
      }
    }
    EXPECT_GT(calls, 0) << (chatml ? "chatml" : "llama3");
    EXPECT_GT(answers, 0) << (chatml ? "chatml" : "llama3");
  }
}

}  // namespace
}  // namespace mnemo::engine
