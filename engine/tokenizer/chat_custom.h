// The simple template format of `--chat-template FILE`
// (docs/chat-template-format.md): per-role prefix/suffix strings, a
// generation prompt, optional tool sections, stop strings.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "engine/tokenizer/chat_render.h"

namespace mnemo::engine::chat {

struct CustomTemplate {
  struct Affix {
    std::string prefix, suffix;
  };
  std::string name;
  std::string bos;
  Affix system, user, assistant, tool;
  std::string generation_prompt;
  std::optional<std::string> default_system;
  bool trim_content = false;
  Affix tools;       // around the tool list, appended to the system turn
  std::string tool_separator = "\n";
  Affix tool_call;   // around each {"name": ..., "arguments": ...} in assistant turns
  std::vector<std::string> stop;

  static CustomTemplate parse(const nlohmann::json& spec, const std::string& source);
  std::string render(const RenderInput& in) const;
};

}  // namespace mnemo::engine::chat
