// ChatML as Qwen2.5-Instruct's template writes it (Qwen2's is the same
// without tools, with another default system prompt): a default system prompt,
// Hermes-style <tools> in the system turn, <tool_call> blocks in assistant
// turns and consecutive tool results merged into one user turn.
#include "engine/tokenizer/chat_render.h"
#include "engine/tokenizer/python_json.h"

namespace mnemo::engine::chat {

std::string render_chatml(const RenderInput& in) {
  const auto& messages = in.messages;
  if (messages.empty()) throw TokenizerError("chatml chat template: no messages");
  const bool has_system = messages[0].role == "system";
  std::string out;
  if (!in.tools.empty()) {
    out += "<|im_start|>system\n";
    out += has_system ? messages[0].content : std::string(in.default_system);
    out += "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
           "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    for (const auto& t : in.tools) out += "\n" + python_json_dumps(t);
    out += "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
           "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
           "<args-json-object>}\n</tool_call><|im_end|>\n";
  } else {
    out += "<|im_start|>system\n" + (has_system ? messages[0].content : std::string(in.default_system)) + "<|im_end|>\n";
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i > 0) || (m.role == "assistant" && m.tool_calls.empty())) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "assistant") {
      out += "<|im_start|>assistant";
      if (!m.content.empty()) out += "\n" + m.content;
      for (const auto& call : m.tool_calls) {
        out += "\n<tool_call>\n{\"name\": \"" + call.name + "\", \"arguments\": ";
        out += python_json_dumps(arguments_value(call.arguments)) + "}\n</tool_call>";
      }
      out += "<|im_end|>\n";
    } else if (m.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (i + 1 == messages.size() || messages[i + 1].role != "tool") out += "<|im_end|>\n";
    }
  }
  if (in.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace mnemo::engine::chat
