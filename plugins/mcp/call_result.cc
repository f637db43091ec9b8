#include "plugins/mcp/call_result.h"

namespace mnemo::plugins::mcp {

namespace {

// A content item the model cannot read as text, described in a few words.
std::string describe_content(const Json& item) {
  const std::string type = text_field(item, "type", "unknown");
  if (type == "image" || type == "audio") return "[" + type + " " + text_field(item, "mimeType") + "]";
  if (type == "resource_link") return "[resource link " + text_field(item, "uri") + "]";
  if (type == "resource" && item.contains("resource") && item["resource"].is_object()) {
    const Json& r = item["resource"];
    if (r.contains("text") && r["text"].is_string()) return r["text"].get<std::string>();
    return "[resource " + text_field(r, "uri") + "]";
  }
  return "[" + type + "]";
}

}  // namespace

// A server's field as text; absent, or of another type, gives `fallback`
// (json::value would throw on a number where a string belongs).
std::string text_field(const Json& j, const char* key, const char* fallback) {
  if (j.is_object())
    if (auto it = j.find(key); it != j.end() && it->is_string()) return it->get<std::string>();
  return fallback;
}

ToolResult to_tool_result(const std::string& server, const Json& result, size_t max_bytes) {
  if (!result.is_object())
    return failed(Failure::InvalidOutput, "MCP server '" + server + "': tools/call result is not an object");
  std::string text;
  bool any_text = false, first = true;
  if (const auto c = result.find("content"); c != result.end()) {
    if (!c->is_array())
      return failed(Failure::InvalidOutput, "MCP server '" + server + "': tools/call 'content' is not an array");
    for (const Json& item : *c) {
      if (!item.is_object()) continue;
      const bool is_text = text_field(item, "type") == "text" && item.contains("text") && item["text"].is_string();
      if (!first) text += "\n";
      first = false;
      if (is_text) {
        text += item["text"].get_ref<const std::string&>();
        any_text = true;
      } else {
        text += describe_content(item);
      }
    }
  }
  if (!any_text) {
    if (const auto s = result.find("structuredContent"); s != result.end() && !s->is_null())
      text = s->dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  if (text.size() > max_bytes)
    return failed(Failure::TooLarge, "MCP server '" + server + "': output of " + std::to_string(text.size()) +
                                         " bytes is over the cap of " + std::to_string(max_bytes) + " bytes");
  ToolResult r;
  r.output = std::move(text);
  r.is_error = (result.contains("isError") && result["isError"].is_boolean() && result["isError"].get<bool>());
  return r;
}

}  // namespace mnemo::plugins::mcp
