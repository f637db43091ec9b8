#include "daemon/app/responses_items.h"

#include "daemon/app/records.h"

namespace mnemo::daemon::app {

using json = protocol::Json;

store::MessageRecord to_record(const engine::ChatMessage& m, int64_t created_at) {
  protocol::Message p;
  p.role = m.role == "system"      ? protocol::Role::System
           : m.role == "assistant" ? protocol::Role::Assistant
           : m.role == "tool"      ? protocol::Role::Tool
                                   : protocol::Role::User;
  p.content = m.content;
  for (const auto& c : m.tool_calls) p.tool_calls.push_back(to_protocol(c));
  p.tool_call_id = m.tool_call_id;
  p.name = m.name;
  p.created_at = created_at;
  return to_record(p);
}

engine::ChatMessage to_chat(const store::MessageRecord& r) { return to_chat(to_protocol(r)); }

std::string item_id(const std::string& prefix, const std::string& response_id, char where, size_t index) {
  const std::string base = response_id.starts_with("resp_") ? response_id.substr(5) : response_id;
  return prefix + base + "_" + where + std::to_string(index);
}

json message_item(const std::string& id, const std::string& text, const char* status) {
  json content = json::array();
  if (std::string(status) == "completed" || !text.empty())
    content.push_back({{"type", "output_text"}, {"text", text}, {"annotations", json::array()}});
  return {{"id", id}, {"type", "message"}, {"status", status}, {"role", "assistant"}, {"content", std::move(content)}};
}

json function_call_item(const std::string& id, const engine::ToolCall& call, const char* status) {
  return {{"id", id},           {"type", "function_call"}, {"status", status},
          {"arguments", call.arguments}, {"call_id", call.id}, {"name", call.name}};
}

json output_items(const std::string& response_id, const ResponseOutcome& o) {
  json out = json::array();
  if (!o.content.empty() || o.tool_calls.empty())
    out.push_back(message_item(item_id("msg_", response_id, 'o', out.size()), o.content, "completed"));
  for (const auto& c : o.tool_calls)
    out.push_back(function_call_item(item_id("fc_", response_id, 'o', out.size()), c, "completed"));
  return out;
}

json input_items(const std::string& response_id, const std::vector<store::MessageRecord>& input) {
  json out = json::array();
  for (const auto& r : input) {
    const engine::ChatMessage m = to_chat(r);
    if (m.role == "tool") {
      out.push_back({{"id", item_id("fco_", response_id, 'i', out.size())},
                     {"type", "function_call_output"},
                     {"call_id", m.tool_call_id},
                     {"output", m.content},
                     {"status", "completed"}});
      continue;
    }
    if (!m.content.empty() || m.tool_calls.empty()) {
      const char* part = m.role == "assistant" ? "output_text" : "input_text";
      out.push_back({{"id", item_id("msg_", response_id, 'i', out.size())},
                     {"type", "message"},
                     {"role", m.role},
                     {"status", "completed"},
                     {"content", json::array({{{"type", part}, {"text", m.content}}})}});
    }
    for (const auto& c : m.tool_calls)
      out.push_back(function_call_item(item_id("fc_", response_id, 'i', out.size()), c, "completed"));
  }
  return out;
}

}  // namespace mnemo::daemon::app
