// The per-family renderers behind ChatTemplate (internal).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/chat_template.h"

namespace mnemo::engine::chat {

struct RenderInput {
  std::span<const ChatMessage> messages;
  const nlohmann::ordered_json& tools;  // array, possibly empty
  bool add_generation_prompt;
  std::string_view date_string;
  std::string_view default_system;  // chatml: system prompt when there is none
};

std::string render_llama3(const RenderInput& in);
std::string render_llama3_1(const RenderInput& in);
std::string render_chatml(const RenderInput& in);
std::string render_mistral(const RenderInput& in);

// Jinja's |trim: Python str.strip() of whitespace.
std::string trim(std::string_view s);
// Tool-call arguments as the templates see them: the parsed object when the
// text is JSON, else the text itself as a JSON string.
nlohmann::ordered_json arguments_value(const std::string& arguments);

}  // namespace mnemo::engine::chat
