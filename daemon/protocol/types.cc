#include "daemon/protocol/types.h"

namespace mnemo::daemon::protocol {

std::string_view to_string(Role r) {
  switch (r) {
    case Role::System: return "system";
    case Role::User: return "user";
    case Role::Assistant: return "assistant";
    case Role::Tool: return "tool";
  }
  return "user";
}

std::string_view to_string(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::ToolCalls: return "tool_calls";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
    case FinishReason::Shutdown: return "shutdown";
  }
  return "error";
}

bool stores_message(FinishReason r) {
  return r == FinishReason::Stop || r == FinishReason::Length || r == FinishReason::ToolCalls;
}

std::string_view to_string(ToolStatus s) { return s == ToolStatus::Error ? "error" : "ok"; }

Json to_json_value(const ToolDef& t) {
  Json fn = Json::object();
  fn["name"] = t.name;
  if (t.description) fn["description"] = *t.description;
  if (t.parameters) fn["parameters"] = *t.parameters;
  Json j = Json::object();
  j["type"] = "function";
  j["function"] = std::move(fn);
  return j;
}

Json to_json_value(std::span<const ToolDef> tools) {
  Json j = Json::array();
  for (const ToolDef& t : tools) j.push_back(to_json_value(t));
  return j;
}

Json to_json_value(const ToolCall& c) {
  Json j = Json::object();
  j["id"] = c.id;
  j["name"] = c.name;
  j["arguments"] = c.arguments;
  return j;
}

Json to_json_value(const Message& m) {
  Json j = Json::object();
  if (m.index) j["index"] = *m.index;
  j["role"] = to_string(m.role);
  j["content"] = m.content;
  if (!m.tool_calls.empty()) {
    Json calls = Json::array();
    for (const ToolCall& c : m.tool_calls) calls.push_back(to_json_value(c));
    j["tool_calls"] = std::move(calls);
  }
  if (m.role == Role::Tool) j["tool_call_id"] = m.tool_call_id;
  if (!m.name.empty()) j["name"] = m.name;
  j["created_at"] = m.created_at;
  return j;
}

Json to_json_value(const Session& s) {
  Json j = Json::object();
  j["id"] = s.id;
  j["created_at"] = s.created_at;
  j["updated_at"] = s.updated_at;
  j["system"] = s.system;
  j["sampling"] = to_json_value(s.sampling);
  j["tools"] = to_json_value(std::span<const ToolDef>(s.tools));
  j["metadata"] = s.metadata.is_object() ? s.metadata : Json::object();
  j["message_count"] = s.message_count;
  if (!s.memory.is_null()) j["memory"] = s.memory;
  return j;
}

Json to_json_value(const Usage& u) {
  Json j = Json::object();
  j["prompt_tokens"] = u.prompt_tokens;
  j["cached_tokens"] = u.cached_tokens;
  j["completion_tokens"] = u.completion_tokens;
  if (!u.memory.is_null()) j["memory"] = u.memory;
  return j;
}

}  // namespace mnemo::daemon::protocol
