// Token-level constraints over real vocabularies: random logits sampled
// under the constraint must always leave a token to pick and end in text
// that ToolCallParser turns into exactly one valid call.
#include "engine/constrain/tool_call_constraint.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <random>

#include "engine/tokenizer/bpe_trainer.h"
#include "engine/tokenizer/bundled_corpus.h"
#include "schema_validator.h"

namespace mnemo::engine {
namespace {

using Json = nlohmann::ordered_json;
const std::filesystem::path kFixtures = MNEMO_CONSTRAIN_FIXTURES;

// The special tokens of generated test models (engine/model/generator.cc).
Tokenizer generated_tokenizer(const std::string& family) {
  std::vector<std::string> specials;
  std::optional<std::string> bos;
  if (family == "llama3.1") {
    specials = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>", "<|python_tag|>"};
    bos = "<|begin_of_text|>";
  } else if (family == "chatml") {
    specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"};
  } else {
    specials = {"<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]"};
    bos = "<s>";
  }
  return Tokenizer::from_json(train_byte_level_bpe(bundled_corpus(), 2048, specials, bos), "<generated " + family + ">");
}

const Json kTools = Json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
    "parameters": {"type": "object", "properties": {
      "location": {"type": "string", "maxLength": 20},
      "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
      "days": {"type": "integer", "minimum": 0}},
      "required": ["location"]}}},
  {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {
      "query": {"type": "string", "minLength": 1, "maxLength": 12},
      "filters": {"type": "array", "maxItems": 2, "items": {"type": "object", "properties": {
        "field": {"type": "string", "maxLength": 6}, "value": {"type": ["number", "string", "null"], "maxLength": 4}},
        "required": ["field", "value"]}},
      "exact": {"type": "boolean"}, "nested": {"type": "object", "properties": {"depth": {"type": "number"}}}},
      "required": ["query", "exact"]}}},
  {"type": "function", "function": {"name": "now"}},
  {"type": "function", "function": {"name": "get_weather_v2", "parameters": {"type": "object", "properties": {
      "free": {"type": "object"}}, "required": ["free"]}}}
])");

const Json* schema_of(const std::string& name) {
  for (const auto& t : kTools)
    if (t["function"]["name"] == name) return t["function"].contains("parameters") ? &t["function"]["parameters"] : nullptr;
  return nullptr;
}

struct Sampled {
  std::vector<int32_t> ids;
  double mask_seconds = 0;
  size_t masks = 0;
};

// Picks the highest random logit among the allowed tokens: a uniformly
// random allowed token, as a random-weight model would.
Sampled sample(GrammarConstraint& c, int32_t vocab, uint64_t seed, int max_steps = 3000) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  Sampled out;
  std::vector<float> logits(static_cast<size_t>(vocab) + 3);  // models may have padding rows
  for (int step = 0; step < max_steps && !c.done(); ++step) {
    for (auto& l : logits) l = u(rng);
    const auto t0 = std::chrono::steady_clock::now();
    c.mask(logits);
    out.mask_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++out.masks;
    int32_t best = -1;
    size_t allowed = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      if (std::isinf(logits[i])) continue;
      ++allowed;
      EXPECT_LT(i, static_cast<size_t>(vocab)) << "padding row allowed";
      if (best < 0 || logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
    }
    EXPECT_GT(allowed, 0u) << "no token allowed while not done, after " << out.ids.size() << " tokens";
    if (best < 0) return out;
    c.accept(best);
    out.ids.push_back(best);
  }
  EXPECT_TRUE(c.done()) << "did not finish in " << max_steps << " tokens";
  return out;
}

// Decodes and parses as the daemon will; returns the one call.
ToolCall parse_one(const Tokenizer& tok, ToolCallSyntax syntax, const std::vector<int32_t>& ids) {
  const std::string text = tok.decode(ids, false);
  ToolCallParser parser(syntax, 1);
  ToolCallDelta all = parser.push(text);
  ToolCallDelta end = parser.finish();
  all.calls.insert(all.calls.end(), end.calls.begin(), end.calls.end());
  all.errors.insert(all.errors.end(), end.errors.begin(), end.errors.end());
  all.text += end.text;
  EXPECT_TRUE(all.errors.empty()) << (all.errors.empty() ? "" : all.errors[0].message) << "\n" << text;
  EXPECT_EQ(all.text.find_first_not_of(" \n"), std::string::npos) << "text outside the call: " << all.text;
  EXPECT_EQ(all.calls.size(), 1u) << text;
  return all.calls.empty() ? ToolCall{} : all.calls[0];
}

void expect_valid_call(const ToolCall& call, const std::optional<std::string>& expected_name) {
  if (expected_name) { EXPECT_EQ(call.name, *expected_name); }
  const Json args = Json::parse(call.arguments, nullptr, false);
  ASSERT_FALSE(args.is_discarded()) << call.arguments;
  ASSERT_TRUE(args.is_object()) << call.arguments;
  const Json* schema = schema_of(call.name);
  if (!schema) {
    ASSERT_TRUE(call.name == "now") << "unknown tool " << call.name;
    EXPECT_TRUE(args.empty());
  } else {
    EXPECT_EQ(testing::validate(args, *schema), "") << call.name << " " << call.arguments;
  }
}

struct Family {
  const char* name;
  ToolCallSyntax syntax;
  const char* open;  // marker produced as a token, "" when none
};
const Family kFamilies[] = {{"chatml", ToolCallSyntax::Hermes, "<tool_call>"},
                            {"llama3.1", ToolCallSyntax::Llama3, ""},
                            {"mistral", ToolCallSyntax::Mistral, "[TOOL_CALLS]"}};

TEST(ToolCallConstraint, RandomLogitsGiveOneValidCallInEveryFamily) {
  for (const Family& f : kFamilies) {
    const Tokenizer tok = generated_tokenizer(f.name);
    const auto vocab = TokenTrie::build(tok);
    std::set<std::string> names;
    for (uint64_t seed = 0; seed < 40; ++seed) {
      const std::optional<std::string> choice =
          seed % 4 == 0 ? std::optional<std::string>("search") : seed % 4 == 1 ? std::optional<std::string>("now") : std::nullopt;
      auto c = make_tool_call_constraint(vocab, tok, f.syntax, kTools, choice);
      const Sampled s = sample(*c, tok.vocab_size(), seed);
      ASSERT_FALSE(s.ids.empty());
      if (*f.open) { EXPECT_EQ(s.ids.front(), *tok.token_id(f.open)) << f.name; }
      if (f.syntax == ToolCallSyntax::Hermes) { EXPECT_EQ(s.ids.back(), *tok.token_id("</tool_call>")); }
      const ToolCall call = parse_one(tok, f.syntax, s.ids);
      expect_valid_call(call, choice);
      names.insert(call.name);
    }
    EXPECT_GE(names.size(), 3u) << f.name << ": required should reach several tools";
  }
}

TEST(ToolCallConstraint, RealVocabularies) {
  struct Real {
    const char* file;
    ToolCallSyntax syntax;
  };
  // Qwen3 has <tool_call> as a non-special added token; Llama 2's
  // SentencePiece vocabulary has no [TOOL_CALLS], so it is written as text.
  for (const Real& r : {Real{"qwen3", ToolCallSyntax::Hermes}, Real{"llama3", ToolCallSyntax::Llama3},
                        Real{"llama2", ToolCallSyntax::Mistral}}) {
    const Tokenizer tok = Tokenizer::load(kFixtures / (std::string(r.file) + ".json"));
    const auto vocab = TokenTrie::build(tok);
    Sampled total;
    for (uint64_t seed = 0; seed < 6; ++seed) {
      auto c = make_tool_call_constraint(vocab, tok, r.syntax, kTools, std::nullopt);
      const Sampled s = sample(*c, tok.vocab_size(), seed + 100);
      if (r.syntax == ToolCallSyntax::Hermes) { EXPECT_EQ(s.ids.front(), *tok.token_id("<tool_call>")); }
      expect_valid_call(parse_one(tok, r.syntax, s.ids), std::nullopt);
      total.mask_seconds += s.mask_seconds;
      total.masks += s.masks;
    }
    // Reported, not asserted (speed is measured, never tested).
    std::cout << r.file << ": vocab " << tok.vocab_size() << ", " << total.masks << " masks, "
              << 1e6 * total.mask_seconds / static_cast<double>(total.masks) << " us per mask\n";
  }
}

TEST(ToolCallConstraint, RejectsBadRequests) {
  const Tokenizer tok = generated_tokenizer("chatml");
  const auto vocab = TokenTrie::build(tok);
  EXPECT_THROW(make_tool_call_constraint(vocab, tok, ToolCallSyntax::Hermes, Json::array(), std::nullopt), std::invalid_argument);
  EXPECT_THROW(make_tool_call_constraint(vocab, tok, ToolCallSyntax::Hermes, kTools, "nope"), std::invalid_argument);
  EXPECT_THROW(make_tool_call_constraint(vocab, tok, ToolCallSyntax::Hermes, Json::parse(R"([{"function": {"name": 3}}])"), std::nullopt),
               std::invalid_argument);
  EXPECT_THROW(make_tool_call_constraint(vocab, tok, ToolCallSyntax::Hermes,
                                         Json::parse(R"([{"function": {"name": "a", "parameters": {"type": "string"}}}])"), std::nullopt),
               std::invalid_argument);
  EXPECT_THROW(make_tool_call_constraint(vocab, tok, ToolCallSyntax::Hermes,
                                         Json::parse(R"([{"function": {"name": "a"}}, {"function": {"name": "a"}}])"), std::nullopt),
               std::invalid_argument);
  auto c = make_tool_call_constraint(vocab, tok, ToolCallSyntax::Hermes, kTools, "now");
  EXPECT_THROW(c->accept(tok.encode("{", false)[0]), std::invalid_argument);  // <tool_call> must come first
}

TEST(ToolCallConstraint, ForcedTextIsTheOnlyChoice) {
  const Tokenizer tok = generated_tokenizer("llama3.1");
  const auto vocab = TokenTrie::build(tok);
  auto c = make_tool_call_constraint(vocab, tok, ToolCallSyntax::Llama3, kTools, "now");
  // With one tool and no arguments the text is fixed: {"name": "now", "parameters": {}}.
  for (const int32_t id : tok.encode(R"({"name": "now", "parameters": {}})", false)) {
    ASSERT_FALSE(c->done());
    EXPECT_TRUE(c->allowed(id)) << tok.token_bytes(id);
    EXPECT_FALSE(c->allowed(*tok.token_id("<|eot_id|>")));
    c->accept(id);
  }
  EXPECT_TRUE(c->done());
}

TEST(JsonSchemaConstraint, EndsWithAnEndTokenOnceComplete) {
  const Tokenizer tok = generated_tokenizer("chatml");
  const auto vocab = TokenTrie::build(tok);
  const int32_t eos = *tok.token_id("<|im_end|>");
  const Json schema = Json::parse(R"({"type": "integer"})");
  auto c = make_json_schema_constraint(vocab, schema, {eos});
  EXPECT_FALSE(c->allowed(eos));
  c->accept(tok.encode("4", false)[0]);
  EXPECT_TRUE(c->allowed(eos));
  EXPECT_FALSE(c->allowed(tok.encode("a", false)[0]));
  c->accept(eos);
  EXPECT_TRUE(c->done());

  for (uint64_t seed = 0; seed < 20; ++seed) {
    const Json obj = kTools[1]["function"]["parameters"];
    auto d = make_json_schema_constraint(vocab, obj, {eos});
    Sampled s = sample(*d, tok.vocab_size(), seed);
    if (!s.ids.empty() && s.ids.back() == eos) s.ids.pop_back();
    const Json v = Json::parse(tok.decode(s.ids), nullptr, false);
    ASSERT_FALSE(v.is_discarded()) << tok.decode(s.ids);
    EXPECT_EQ(testing::validate(v, obj), "") << v.dump();
  }
}

}  // namespace
}  // namespace mnemo::engine
