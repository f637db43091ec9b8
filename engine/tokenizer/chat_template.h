// Chat templates: turn a conversation (and tool definitions) into the
// prompt text a model was trained on, byte for byte what the model's own
// Jinja template renders through HF transformers.
//
// Built-in families:
//   "llama3"    Meta-Llama-3-Instruct (no tool support in its template)
//   "llama3.1"  Llama-3.1/3.2-Instruct with JSON tool calling (tools in the
//               first user message, tool results as "ipython" turns)
//   "chatml"    Qwen2/Qwen2.5-Instruct, Hermes-style tools in the system prompt
//   "mistral"   Mistral-7B-Instruct-v0.3 ([AVAILABLE_TOOLS], [TOOL_CALLS],
//               [TOOL_RESULTS]; 9-character tool call ids)
// or a custom template file in the format of docs/chat-template-format.md.
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/error.h"

namespace mnemo::engine {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as in the OpenAI API
};

struct ChatMessage {
  std::string role;  // system, user, assistant, tool
  std::string content;
  std::vector<ToolCall> tool_calls;  // assistant turns that call tools
  std::string tool_call_id;          // tool turns: the call answered
  std::string name;                  // tool turns: the tool's name
};

class ChatTemplate {
 public:
  // Picks the family from config.json's architectures and the markers in
  // tokenizer_config.json (its chat_template text, bos/eos and added
  // tokens), falling back to tokenizer.json's added tokens. Throws
  // TokenizerError naming the directory when nothing matches.
  static ChatTemplate for_model(const std::filesystem::path& model_dir);
  // A custom template (docs/chat-template-format.md).
  static ChatTemplate from_file(const std::filesystem::path& file);
  static ChatTemplate from_json(const nlohmann::json& spec, std::string_view source);
  // One of the built-in family names above.
  static ChatTemplate builtin(std::string_view family);

  // tools: an array of OpenAI-style tool definitions ({"type": "function",
  // "function": {...}}), possibly empty; key order is kept in the prompt.
  // Throws TokenizerError for conversations the family's template rejects
  // (e.g. two tool calls in one Llama 3.1 turn).
  std::string render(std::span<const ChatMessage> messages, const nlohmann::ordered_json& tools,
                     bool add_generation_prompt) const;

  std::string family() const;
  // Token texts that end an assistant turn.
  std::vector<std::string> stop_tokens() const;
  // Llama 3.1's "Today Date" line; the template's default is "26 Jul 2024".
  void set_date_string(std::string date);

  struct Impl;

 private:
  explicit ChatTemplate(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace mnemo::engine
