#include "engine/tokenizer/chat_custom.h"

#include "engine/tokenizer/python_json.h"

namespace mnemo::engine::chat {

namespace {

std::string str(const nlohmann::json& j, const char* key, const std::string& where, std::string fallback = {}) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_string()) throw TokenizerError(where + ": \"" + key + "\" must be a string");
  return j[key].get<std::string>();
}

CustomTemplate::Affix affix(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return {};
  if (!j[key].is_object()) throw TokenizerError(where + ": \"" + key + "\" must be an object with prefix and suffix");
  const std::string at = where + ": " + key;
  return {str(j[key], "prefix", at), str(j[key], "suffix", at)};
}

}  // namespace

CustomTemplate CustomTemplate::parse(const nlohmann::json& spec, const std::string& source) {
  if (!spec.is_object()) throw TokenizerError(source + ": a chat template file must be a JSON object");
  static const char* kKnown[] = {"name", "bos", "system", "user", "assistant", "tool", "generation_prompt",
                                 "default_system", "trim_content", "tools", "tool_separator", "tool_call", "stop"};
  for (const auto& [key, _] : spec.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown))
      throw TokenizerError(source + ": unknown field \"" + key + "\"");
  }
  CustomTemplate t;
  t.name = str(spec, "name", source, "custom");
  t.bos = str(spec, "bos", source);
  t.system = affix(spec, "system", source);
  t.user = affix(spec, "user", source);
  t.assistant = affix(spec, "assistant", source);
  t.tool = affix(spec, "tool", source);
  if (!spec.contains("user") || !spec.contains("assistant"))
    throw TokenizerError(source + ": \"user\" and \"assistant\" are required");
  t.generation_prompt = str(spec, "generation_prompt", source, t.assistant.prefix);
  if (spec.contains("default_system") && !spec["default_system"].is_null())
    t.default_system = str(spec, "default_system", source);
  if (spec.contains("trim_content")) {
    if (!spec["trim_content"].is_boolean()) throw TokenizerError(source + ": \"trim_content\" must be a boolean");
    t.trim_content = spec["trim_content"].get<bool>();
  }
  t.tools = affix(spec, "tools", source);
  t.tool_separator = str(spec, "tool_separator", source, "\n");
  t.tool_call = affix(spec, "tool_call", source);
  if (spec.contains("stop")) {
    if (!spec["stop"].is_array()) throw TokenizerError(source + ": \"stop\" must be an array of strings");
    for (const auto& s : spec["stop"]) {
      if (!s.is_string()) throw TokenizerError(source + ": \"stop\" must be an array of strings");
      t.stop.push_back(s.get<std::string>());
    }
  }
  return t;
}

std::string CustomTemplate::render(const RenderInput& in) const {
  auto body = [&](const std::string& s) { return trim_content ? trim(s) : s; };
  std::string tool_block;
  if (!in.tools.empty()) {
    tool_block = tools.prefix;
    for (size_t i = 0; i < in.tools.size(); ++i) tool_block += (i ? tool_separator : "") + python_json_dumps(in.tools[i]);
    tool_block += tools.suffix;
  }
  std::string out = bos;
  size_t start = 0;
  if (!in.messages.empty() && in.messages[0].role == "system") {
    out += system.prefix + body(in.messages[0].content) + tool_block + system.suffix;
    start = 1;
  } else if (default_system || !tool_block.empty()) {
    out += system.prefix + default_system.value_or("") + tool_block + system.suffix;
  }
  for (size_t i = start; i < in.messages.size(); ++i) {
    const ChatMessage& m = in.messages[i];
    const Affix* a = m.role == "user" ? &user : m.role == "assistant" ? &assistant : m.role == "tool" ? &tool
                   : m.role == "system" ? &system : nullptr;
    if (!a) throw TokenizerError("chat template '" + name + "': unknown role '" + m.role + "'");
    std::string text = body(m.content);
    for (const auto& call : m.tool_calls) {
      nlohmann::ordered_json j = {{"name", call.name}, {"arguments", arguments_value(call.arguments)}};
      text += tool_call.prefix + python_json_dumps(j) + tool_call.suffix;
    }
    out += a->prefix + text + a->suffix;
  }
  if (in.add_generation_prompt) out += generation_prompt;
  return out;
}

}  // namespace mnemo::engine::chat
