// encode_with_generated: an assistant message the model generated goes back
// into the next prompt as its generated tokens, so the next turn's prompt
// starts with the previous turn's prompt and generation (its whole KV),
// under every template family; the text around it is tokenized as before.
#include <gtest/gtest.h>

#include <algorithm>

#include "engine/tokenizer/generated_turns.h"
#include "tests/engine/tokenizer/encoder_fixtures.h"

namespace mnemo::engine {
namespace {

using Json = nlohmann::ordered_json;
using Ids = std::vector<int32_t>;

const Json kTools = Json::array({{{"type", "function"},
                                  {"function",
                                   {{"name", "calc"},
                                    {"description", "Evaluates arithmetic."},
                                    {"parameters",
                                     {{"type", "object"}, {"properties", {{"expr", {{"type", "string"}}}}}}}}}}});

bool has_prefix(const Ids& ids, const Ids& prefix) {
  return ids.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), ids.begin());
}

// What a model would have generated for a call, serialised the way a model
// writes it (key order and spacing the templates do not reproduce), and
// tokenized in pieces as sampling produces non-canonical splits.
Ids in_pieces(const Tokenizer& tok, const std::string& text) {
  Ids out;
  for (size_t i = 0; i < text.size(); i += 7) {
    const Ids piece = tok.encode(text.substr(i, 7), false);
    out.insert(out.end(), piece.begin(), piece.end());
  }
  return out;
}

Ids generated_call(const Tokenizer& tok, const std::string& family) {
  std::string text;
  if (family == "chatml" || family == "custom") text = "<tool_call>\n{\"arguments\":{\"expr\":\"17*23\"},\"name\":\"calc\"}\n</tool_call>";
  else if (family == "mistral") text = "[TOOL_CALLS][{\"arguments\":{\"expr\":\"17*23\"},\"name\":\"calc\"}]";
  else text = "{\"parameters\":{\"expr\":\"17*23\"},\"name\":\"calc\"}";
  return in_pieces(tok, text);
}

struct Turns {
  std::vector<ChatMessage> messages;
  Json tools;
};

// system, user, then the model's call (message 2), the tool's result, a
// final answer (message 4), and a new user question. Mistral's template
// moves the system prompt into the last user message, so its conversation
// has none there (MistralMovesTheSystemPrompt shows what that costs).
Turns conversation(const Family& f, bool system = true) {
  Turns t;
  const bool tools = f.name != "llama3";  // Llama 3's template has no tools
  t.tools = tools ? kTools : Json::array();
  t.messages.push_back({"system", "You are a careful calculator.", {}, "", ""});
  if (!system) t.messages.back() = {"user", "Hello.", {}, "", ""};
  if (!system) t.messages.push_back({"assistant", "Hi.", {}, "", ""});
  t.messages.push_back({"user", "What is 17 * 23?", {}, "", ""});
  ChatMessage call{"assistant", "", {}, "", ""};
  if (tools) call.tool_calls.push_back({"abcdefghi", "calc", R"({"expr": "17*23"})"});
  else call.content = "Let me compute that: 17 * 23.";
  t.messages.push_back(call);
  if (tools) t.messages.push_back({"tool", "391", {}, "abcdefghi", "calc"});
  else t.messages.push_back({"user", "Go on.", {}, "", ""});
  t.messages.push_back({"assistant", "It is 391.", {}, "", ""});
  t.messages.push_back({"user", "And 391 / 17?", {}, "", ""});
  return t;
}

class Generated : public ::testing::TestWithParam<Family> {};

TEST_P(Generated, NextPromptStartsWithThePreviousTurnsKv) {
  const Family& f = GetParam();
  const PromptEncoder enc = encoder_for(f);
  const Tokenizer& tok = tokenizer(f.arch);
  const Turns c = conversation(f, f.name != "mistral");
  const std::span<const ChatMessage> all(c.messages);
  const size_t call = all.size() - 4;  // the model's call, then the result, an answer, a question

  // Turn 1: prompt through the user's question; the model generates a call.
  const Ids prompt1 = enc.encode(all.first(call), c.tools, true);
  const Ids gen1 = f.name == "llama3" ? in_pieces(tok, "Let me compute that: 17 * 23.") : generated_call(tok, f.name);
  // Turn 2 sends the call back as the API returned it, with the result.
  const GeneratedTurn g1{call, gen1};
  const SplicedPrompt p2 = encode_with_generated(enc, all.first(call + 2), c.tools, true, std::span(&g1, 1));
  const Ids plain2 = enc.encode(all.first(call + 2), c.tools, true);
  ASSERT_EQ(p2.spliced, 1);
  Ids kv1 = prompt1;
  kv1.insert(kv1.end(), gen1.begin(), gen1.end());
  EXPECT_TRUE(has_prefix(p2.ids, kv1)) << f.name;
  EXPECT_FALSE(has_prefix(plain2, kv1)) << f.name << ": the template reproduces the call; the test shows nothing";
  // What follows the generated tokens is the template's text from the
  // turn's end marker on, tokenized as in the plain prompt.
  const Ids tail(p2.ids.begin() + std::ptrdiff_t(kv1.size()), p2.ids.end());
  ASSERT_FALSE(tail.empty());
  EXPECT_TRUE(tok.is_special(tail.front())) << f.name << ": " << tok.decode(tail);
  EXPECT_TRUE(std::equal(tail.rbegin(), tail.rend(), plain2.rbegin())) << f.name;

  // Turn 3, after the model answered (message 4): it finds turn 2's KV,
  // which held turn 2's spliced prompt and its generation.
  const Ids gen2 = tok.encode("It is 391.", false);
  const GeneratedTurn g[] = {g1, {call + 2, gen2}};
  const SplicedPrompt p3 = encode_with_generated(enc, all, c.tools, true, g);
  if (f.name == "mistral") {
    // A new user message: Mistral's template moves the tools before it, so
    // nothing after the first [INST] could match (a tool round, above, can).
    EXPECT_EQ(p3.declined, 2);
    EXPECT_EQ(p3.ids, enc.encode(all, c.tools, true));
    return;
  }
  EXPECT_EQ(p3.spliced, 2) << f.name;
  Ids kv2 = p2.ids;
  kv2.insert(kv2.end(), gen2.begin(), gen2.end());
  EXPECT_TRUE(has_prefix(p3.ids, kv2)) << f.name;
}

TEST(GeneratedMistral, MistralMovesTheSystemPromptSoATurnCannotBeSpliced) {
  // Its template (as HF renders it) puts the system prompt into the last
  // user message only while that message ends the conversation: the prompt a
  // call was generated from is not a prefix of the next one. The next
  // prompt is then rendered as usual, and no KV could have been reused.
  const Family f{"mistral", "mistral"};
  const PromptEncoder enc = encoder_for(f);
  const Turns c = conversation(f, true);
  const std::span<const ChatMessage> all(c.messages);
  const Ids gen = generated_call(tokenizer(f.arch), f.name);
  const GeneratedTurn g{2, gen};
  const SplicedPrompt p = encode_with_generated(enc, all.first(4), c.tools, true, std::span(&g, 1));
  EXPECT_EQ(p.declined, 1);
  EXPECT_EQ(p.ids, enc.encode(all.first(4), c.tools, true));
}

TEST_P(Generated, WithoutGeneratedTurnsItIsThePlainEncoding) {
  const Family& f = GetParam();
  const PromptEncoder enc = encoder_for(f);
  const Turns c = conversation(f);
  const SplicedPrompt p = encode_with_generated(enc, c.messages, c.tools, true, {});
  EXPECT_EQ(p.ids, enc.encode(c.messages, c.tools, true));
  EXPECT_EQ(p.spliced, 0);
}

TEST_P(Generated, ANonAssistantOrMissingMessageIsDeclined) {
  const Family& f = GetParam();
  const PromptEncoder enc = encoder_for(f);
  const Turns c = conversation(f);
  const Ids tokens = {1, 2, 3};
  const GeneratedTurn g[] = {{1, tokens}, {99, tokens}};
  const SplicedPrompt p = encode_with_generated(enc, c.messages, c.tools, true, g);
  EXPECT_EQ(p.declined, 2);
  EXPECT_EQ(p.ids, enc.encode(c.messages, c.tools, true));
}

INSTANTIATE_TEST_SUITE_P(EveryFamily, Generated, ::testing::ValuesIn(kFamilies), [](const auto& info) {
  std::string f = info.param.name;
  std::replace(f.begin(), f.end(), '.', '_');
  return f;
});

}  // namespace
}  // namespace mnemo::engine
