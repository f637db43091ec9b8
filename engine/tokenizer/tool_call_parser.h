// Incremental extraction of tool calls from generated text, for the
// formats the built-in chat templates teach:
//   Hermes   <tool_call>{"name": ..., "arguments": {...}}</tool_call>  (chatml / Qwen)
//   Llama3   {"name": ..., "parameters": {...}} as the whole reply, optionally
//            after <|python_tag|>, several separated by ';'; and the
//            built-in form <|python_tag|>tool.call(key="value", ...)     (llama3.1)
//   Mistral  [TOOL_CALLS] [{"name": ..., "arguments": {...}, "id": ...}] (mistral)
// Text outside calls is streamed as soon as it cannot be the start of a
// call marker. Malformed calls become ToolCallParseError values; nothing
// here throws. Feed text decoded with special tokens kept (the markers
// <|python_tag|> and [TOOL_CALLS] are special tokens), stop tokens removed.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/chat_template.h"

namespace mnemo::engine {

enum class ToolCallSyntax { Hermes, Llama3, Mistral };

// The syntax a chat template family's models emit; nullopt for families
// without tool calling (llama3, custom templates).
std::optional<ToolCallSyntax> tool_call_syntax_for_family(std::string_view family);

struct ToolCallParseError {
  std::string message;  // what was wrong, for the client
  std::string text;     // the raw text of the call
};

struct ToolCallDelta {
  std::string text;                       // text outside calls, newly final
  std::vector<ToolCall> calls;            // calls completed by this chunk
  std::vector<ToolCallParseError> errors;
  bool empty() const { return text.empty() && calls.empty() && errors.empty(); }
};

class ToolCallParser {
 public:
  // Calls without an id in the output get a 9-character alphanumeric id
  // (the length Mistral templates require) drawn from `id_seed`.
  explicit ToolCallParser(ToolCallSyntax syntax, uint64_t id_seed = std::random_device{}());

  ToolCallDelta push(std::string_view chunk);
  // End of generation: releases held text; an unfinished call is parsed as
  // far as it goes or reported as an error.
  ToolCallDelta finish();
  // True while the text seen so far is inside a call.
  bool in_call() const { return mode_ == Mode::Call; }

 private:
  enum class Mode { Start, Text, Call };
  void step(ToolCallDelta& out, bool final);
  void step_hermes(ToolCallDelta& out, bool final);
  void step_llama(ToolCallDelta& out, bool final);
  void step_mistral(ToolCallDelta& out, bool final);
  void emit_text_keeping_prefix_of(std::string_view marker, ToolCallDelta& out, bool final);
  void add_call(std::string_view json_text, ToolCallDelta& out);
  std::string next_id();

  ToolCallSyntax syntax_;
  Mode mode_;
  std::string buf_;
  std::mt19937_64 rng_;
  bool python_tag_ = false;
};

}  // namespace mnemo::engine
