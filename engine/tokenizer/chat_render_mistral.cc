// Mistral-7B-Instruct-v0.3's template: the system prompt joins the last user
// turn (and is dropped when the conversation does not end with one), tools
// are listed before the last user turn, tool calls carry 9-character ids.
#include "engine/tokenizer/chat_render.h"
#include "engine/tokenizer/python_json.h"

namespace mnemo::engine::chat {

namespace {

constexpr const char* kEos = "</s>";

[[noreturn]] void reject(const std::string& why) { throw TokenizerError("mistral chat template: " + why); }

std::string available_tools(const nlohmann::ordered_json& tools) {
  std::string out = "[AVAILABLE_TOOLS] [";
  for (size_t i = 0; i < tools.size(); ++i) {
    const auto& t = tools[i];
    if (!t.is_object() || !t.contains("function") || !t["function"].is_object())
      reject("tools[" + std::to_string(i) + "].function must be an object");
    out += R"({"type": "function", "function": {)";
    bool first = true;
    for (auto it = t["function"].begin(); it != t["function"].end(); ++it) {
      if (it.key() == "return") continue;
      if (!first) out += ", ";
      first = false;
      // Strings are pasted in unescaped, as the template does.
      if (it.value().is_string()) out += "\"" + it.key() + "\": \"" + it.value().get<std::string>() + "\"";
      else out += "\"" + it.key() + "\": " + python_json_dumps(it.value());
    }
    out += "}}";
    out += i + 1 < tools.size() ? ", " : "]";
  }
  return out + "[/AVAILABLE_TOOLS]";
}

}  // namespace

std::string render_mistral(const RenderInput& in) {
  auto messages = in.messages;
  const ChatMessage* system = nullptr;
  if (!messages.empty() && messages[0].role == "system") {
    system = &messages[0];
    messages = messages.subspan(1);
  }
  const ChatMessage* last_user = nullptr;
  size_t index = 0;
  for (const auto& m : messages) {
    if (m.role == "user") last_user = &m;
    if (m.role == "tool" || m.role == "tool_results" || !m.tool_calls.empty()) continue;
    if ((m.role == "user") != (index % 2 == 0))
      reject("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...");
    ++index;
  }
  std::string out = "<s>";
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool last = i + 1 == messages.size();
    if (m.role == "user") {
      // The template compares whole messages, so an identical earlier user
      // turn also gets the tool list.
      if (!in.tools.empty() && m.content == last_user->content && m.name == last_user->name)
        out += available_tools(in.tools);
      if (last && system) out += "[INST] " + system->content + "\n\n" + m.content + "[/INST]";
      else out += "[INST] " + m.content + "[/INST]";
    } else if (!m.tool_calls.empty()) {
      out += "[TOOL_CALLS] [";
      for (size_t k = 0; k < m.tool_calls.size(); ++k) {
        const ToolCall& call = m.tool_calls[k];
        nlohmann::ordered_json function = {{"name", call.name}, {"arguments", arguments_value(call.arguments)}};
        const std::string json = python_json_dumps(function);
        out += json.substr(0, json.size() - 1);
        if (call.id.size() != 9) reject("Tool call IDs should be alphanumeric strings with length 9!");
        out += ", \"id\": \"" + call.id + "\"}";
        out += k + 1 < m.tool_calls.size() ? ", " : std::string("]") + kEos;
      }
    } else if (m.role == "assistant") {
      out += " " + trim(m.content) + kEos;
    } else if (m.role == "tool" || m.role == "tool_results") {
      out += "[TOOL_RESULTS] {\"content\": " + m.content + ", ";
      if (m.tool_call_id.size() != 9) reject("Tool call IDs should be alphanumeric strings with length 9!");
      out += "\"call_id\": \"" + m.tool_call_id + "\"}[/TOOL_RESULTS]";
    } else {
      reject("Only user and assistant roles are supported, with the exception of an initial optional system message!");
    }
  }
  return out;
}

}  // namespace mnemo::engine::chat
