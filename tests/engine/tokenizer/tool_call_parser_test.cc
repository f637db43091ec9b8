#include <gtest/gtest.h>

#include <random>

#include "engine/tokenizer/tool_call_parser.h"

namespace mnemo::engine {
namespace {

// Feeds text in pieces of `step` bytes (0: all at once) and merges the deltas.
ToolCallDelta run(ToolCallSyntax syntax, std::string_view text, size_t step = 0) {
  ToolCallParser parser(syntax, 42);
  ToolCallDelta all;
  auto merge = [&](ToolCallDelta d) {
    all.text += d.text;
    all.calls.insert(all.calls.end(), d.calls.begin(), d.calls.end());
    all.errors.insert(all.errors.end(), d.errors.begin(), d.errors.end());
  };
  if (step == 0) step = text.size() + 1;
  for (size_t i = 0; i < text.size(); i += step) merge(parser.push(text.substr(i, step)));
  merge(parser.finish());
  return all;
}

void expect_same_for_every_chunking(ToolCallSyntax syntax, std::string_view text) {
  const auto whole = run(syntax, text);
  for (size_t step : {1, 2, 3, 7}) {
    const auto pieces = run(syntax, text, step);
    EXPECT_EQ(pieces.text, whole.text) << "step " << step;
    ASSERT_EQ(pieces.calls.size(), whole.calls.size()) << "step " << step;
    for (size_t i = 0; i < whole.calls.size(); ++i) {
      EXPECT_EQ(pieces.calls[i].name, whole.calls[i].name);
      EXPECT_EQ(pieces.calls[i].arguments, whole.calls[i].arguments);
    }
    EXPECT_EQ(pieces.errors.size(), whole.errors.size()) << "step " << step;
  }
}

TEST(ToolCallParser, HermesCallsAndSurroundingText) {
  const std::string text =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"search_docs\", \"arguments\": {\"query\": \"a < b\"}}\n</tool_call>";
  const auto d = run(ToolCallSyntax::Hermes, text);
  EXPECT_EQ(d.text, "Let me check.\n\n");
  ASSERT_EQ(d.calls.size(), 2u);
  EXPECT_EQ(d.calls[0].name, "get_weather");
  EXPECT_EQ(d.calls[0].arguments, R"({"city": "Paris", "days": 2})");
  EXPECT_EQ(d.calls[1].arguments, R"({"query": "a < b"})");
  EXPECT_EQ(d.calls[0].id.size(), 9u);
  EXPECT_NE(d.calls[0].id, d.calls[1].id);
  EXPECT_TRUE(d.errors.empty());
  expect_same_for_every_chunking(ToolCallSyntax::Hermes, text);
}

TEST(ToolCallParser, HermesHoldsBackOnlyWhatCouldBeATag) {
  ToolCallParser p(ToolCallSyntax::Hermes, 1);
  EXPECT_EQ(p.push("a <b> <tool").text, "a <b> ");
  EXPECT_FALSE(p.in_call());
  EXPECT_EQ(p.push("_call>{\"name\"").text, "");
  EXPECT_TRUE(p.in_call());
  const auto d = p.push(": \"f\"}</tool_call> done");
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].arguments, "{}");
  EXPECT_EQ(d.text, " done");
  EXPECT_EQ(run(ToolCallSyntax::Hermes, "ends with <tool_").text, "ends with <tool_");
}

TEST(ToolCallParser, HermesErrors) {
  auto d = run(ToolCallSyntax::Hermes, "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": }</tool_call>after");
  ASSERT_EQ(d.errors.size(), 1u);
  EXPECT_EQ(d.errors[0].message, "tool call is not valid JSON");
  EXPECT_EQ(d.text, "after");
  d = run(ToolCallSyntax::Hermes, "<tool_call>{\"arguments\": {}}</tool_call>");
  ASSERT_EQ(d.errors.size(), 1u);
  EXPECT_EQ(d.errors[0].message, "tool call has no string \"name\"");
  d = run(ToolCallSyntax::Hermes, "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1");
  ASSERT_EQ(d.errors.size(), 1u);
  EXPECT_EQ(d.errors[0].message, "unterminated <tool_call>");
  // Generation stopped right after the JSON: the call still counts.
  d = run(ToolCallSyntax::Hermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}\n");
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].arguments, R"({"x": 1})");
}

TEST(ToolCallParser, Llama3JsonCalls) {
  const std::string text = R"({"name": "get_weather", "parameters": {"city": "Oslo", "unit": "celsius"}})";
  auto d = run(ToolCallSyntax::Llama3, "  " + text);
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].name, "get_weather");
  EXPECT_EQ(d.calls[0].arguments, R"({"city": "Oslo", "unit": "celsius"})");
  EXPECT_EQ(d.text, "");
  expect_same_for_every_chunking(ToolCallSyntax::Llama3, text + "; " + text);
  EXPECT_EQ(run(ToolCallSyntax::Llama3, text + "; " + text).calls.size(), 2u);

  d = run(ToolCallSyntax::Llama3, "<|python_tag|>" + text);
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].name, "get_weather");
  expect_same_for_every_chunking(ToolCallSyntax::Llama3, "<|python_tag|>" + text);
}

TEST(ToolCallParser, Llama3BuiltinAndPlainText) {
  auto d = run(ToolCallSyntax::Llama3, "<|python_tag|>brave_search.call(query=\"weather in Oslo\", count=3)");
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].name, "brave_search");
  EXPECT_EQ(d.calls[0].arguments, R"({"query": "weather in Oslo", "count": 3})");
  d = run(ToolCallSyntax::Llama3, "<|python_tag|>brave_search.call(query=\"unterminated");
  ASSERT_EQ(d.errors.size(), 1u);

  // A reply that does not start with a call is text, braces and all.
  d = run(ToolCallSyntax::Llama3, "Sure: {\"name\": \"x\"} is JSON.");
  EXPECT_EQ(d.text, "Sure: {\"name\": \"x\"} is JSON.");
  EXPECT_TRUE(d.calls.empty());
  expect_same_for_every_chunking(ToolCallSyntax::Llama3, "Sure: {\"name\": \"x\"} is JSON.");
  EXPECT_EQ(run(ToolCallSyntax::Llama3, "<|pyth").text, "<|pyth");

  d = run(ToolCallSyntax::Llama3, R"({"name": "f", "parameters": {"a": [1, 2)");
  ASSERT_EQ(d.errors.size(), 1u);
  EXPECT_EQ(d.errors[0].message, "incomplete JSON tool call");
}

TEST(ToolCallParser, MistralCallsKeepTheirIds) {
  const std::string text =
      "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}, \"id\": \"rome00001\"}, "
      "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lima\"}, \"id\": \"lima00002\"}]";
  const auto d = run(ToolCallSyntax::Mistral, text);
  ASSERT_EQ(d.calls.size(), 2u);
  EXPECT_EQ(d.calls[0].id, "rome00001");
  EXPECT_EQ(d.calls[1].id, "lima00002");
  EXPECT_EQ(d.calls[1].arguments, R"({"city": "Lima"})");
  expect_same_for_every_chunking(ToolCallSyntax::Mistral, text);
  EXPECT_EQ(run(ToolCallSyntax::Mistral, "[TOOL_CALLS] oops").errors.size(), 1u);
}

TEST(ToolCallParser, IdsAreDeterministicPerSeed) {
  const std::string text = "<tool_call>{\"name\": \"f\"}</tool_call>";
  EXPECT_EQ(run(ToolCallSyntax::Hermes, text).calls[0].id, run(ToolCallSyntax::Hermes, text).calls[0].id);
  EXPECT_EQ(tool_call_syntax_for_family("chatml"), ToolCallSyntax::Hermes);
  EXPECT_EQ(tool_call_syntax_for_family("llama3.1"), ToolCallSyntax::Llama3);
  EXPECT_EQ(tool_call_syntax_for_family("llama3"), std::nullopt);
}

TEST(ToolCallParser, GarbageNeverThrows) {
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\"\\:,; <>/|_tolcaxTOOLCALS\n0123";
  for (int round = 0; round < 300; ++round) {
    std::string s;
    const int len = static_cast<int>(rng() % 80);
    for (int i = 0; i < len; ++i) s.push_back(alphabet[rng() % alphabet.size()]);
    if (round % 3 == 0) s = "<tool_call>" + s;
    if (round % 5 == 0) s = "[TOOL_CALLS]" + s;
    for (auto syntax : {ToolCallSyntax::Hermes, ToolCallSyntax::Llama3, ToolCallSyntax::Mistral}) {
      EXPECT_NO_THROW(run(syntax, s, 1 + rng() % 5));
    }
  }
}

}  // namespace
}  // namespace mnemo::engine
