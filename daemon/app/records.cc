#include "daemon/app/records.h"

#include <chrono>
#include <cstdio>
#include <atomic>

namespace mnemo::daemon::app {

using protocol::Json;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string make_id(std::string_view prefix) {
  // A process-wide counter after the time keeps ids made in the same
  // millisecond in creation order (and unique).
  static std::atomic<uint32_t> counter{0};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%012llx%08x", static_cast<unsigned long long>(now_ms()), unsigned(counter++));
  return std::string(prefix) + buf;
}

namespace {

protocol::Sampling sampling_from_json(const Json& j) {
  protocol::Sampling s;
  if (!j.is_object()) return s;
  auto num = [&](const char* k) -> std::optional<double> {
    return j.contains(k) && j[k].is_number() ? std::optional(j[k].get<double>()) : std::nullopt;
  };
  auto integer = [&](const char* k) -> std::optional<int64_t> {
    return j.contains(k) && j[k].is_number_integer() ? std::optional(j[k].get<int64_t>()) : std::nullopt;
  };
  s.temperature = num("temperature");
  s.top_p = num("top_p");
  s.top_k = integer("top_k");
  s.min_p = num("min_p");
  s.repetition_penalty = num("repetition_penalty");
  s.max_tokens = integer("max_tokens");
  if (j.contains("seed") && j["seed"].is_number_unsigned()) s.seed = j["seed"].get<uint64_t>();
  if (j.contains("stop") && j["stop"].is_array()) s.stop = j["stop"].get<std::vector<std::string>>();
  return s;
}

std::vector<protocol::ToolDef> tools_from_json(const Json& j) {
  std::vector<protocol::ToolDef> out;
  if (!j.is_array()) return out;
  for (const auto& t : j) {
    const auto& f = t.contains("function") ? t["function"] : t;
    protocol::ToolDef d;
    d.name = f.value("name", "");
    if (f.contains("description") && f["description"].is_string()) d.description = f["description"].get<std::string>();
    if (f.contains("parameters")) d.parameters = f["parameters"];
    out.push_back(std::move(d));
  }
  return out;
}

protocol::Role role_of(store::Role r) {
  switch (r) {
    case store::Role::System: return protocol::Role::System;
    case store::Role::User: return protocol::Role::User;
    case store::Role::Assistant: return protocol::Role::Assistant;
    case store::Role::Tool: return protocol::Role::Tool;
  }
  return protocol::Role::User;
}

store::Role role_of(protocol::Role r) {
  switch (r) {
    case protocol::Role::System: return store::Role::System;
    case protocol::Role::User: return store::Role::User;
    case protocol::Role::Assistant: return store::Role::Assistant;
    case protocol::Role::Tool: return store::Role::Tool;
  }
  return store::Role::User;
}

}  // namespace

protocol::Session to_protocol(const store::SessionRecord& r, int64_t message_count) {
  protocol::Session s;
  s.id = r.id;
  s.created_at = r.created_at;
  s.updated_at = r.updated_at ? r.updated_at : r.created_at;
  s.system = r.system_prompt;
  s.sampling = sampling_from_json(r.sampling);
  s.tools = tools_from_json(r.tools);
  s.metadata = r.metadata.is_object() ? r.metadata : Json::object();
  s.message_count = message_count;
  s.memory = r.memory;
  return s;
}

store::SessionRecord to_record(const protocol::Session& s) {
  store::SessionRecord r;
  r.id = s.id;
  r.created_at = s.created_at;
  r.updated_at = s.updated_at;
  r.system_prompt = s.system;
  r.sampling = protocol::to_json_value(s.sampling);
  r.tools = protocol::to_json_value(std::span(s.tools));
  r.metadata = s.metadata;
  r.memory = s.memory;
  return r;
}

protocol::Message to_protocol(const store::MessageRecord& r) {
  protocol::Message m;
  m.role = role_of(r.role);
  m.content = r.content;
  if (r.tool_calls.is_array())
    for (const auto& c : r.tool_calls) {
      protocol::ToolCall t;
      t.id = c.value("id", "");
      t.name = c.value("name", "");
      if (c.contains("arguments")) t.arguments = c["arguments"];
      m.tool_calls.push_back(std::move(t));
    }
  m.tool_call_id = r.tool_call_id.value_or("");
  m.name = r.name.value_or("");
  m.index = r.seq - 1;  // the store counts from 1, the protocol from 0
  m.created_at = r.created_at;
  return m;
}

store::MessageRecord to_record(const protocol::Message& m) {
  store::MessageRecord r;
  r.role = role_of(m.role);
  r.content = m.content;
  if (!m.tool_calls.empty()) {
    r.tool_calls = Json::array();
    for (const auto& c : m.tool_calls) r.tool_calls.push_back(protocol::to_json_value(c));
  }
  if (!m.tool_call_id.empty()) r.tool_call_id = m.tool_call_id;
  if (!m.name.empty()) r.name = m.name;
  r.created_at = m.created_at ? m.created_at : now_ms();
  return r;
}

engine::ChatMessage to_chat(const protocol::Message& m) {
  engine::ChatMessage c;
  c.role = std::string(protocol::to_string(m.role));
  c.content = m.content;
  for (const auto& t : m.tool_calls) c.tool_calls.push_back({t.id, t.name, t.arguments.dump()});
  c.tool_call_id = m.tool_call_id;
  c.name = m.name;
  return c;
}

Json arguments_object(const std::string& json_text) {
  Json j = Json::parse(json_text, nullptr, false);
  if (j.is_object()) return j;
  return Json{{"_raw", json_text}};
}

protocol::ToolCall to_protocol(const engine::ToolCall& c) { return {c.id, c.name, arguments_object(c.arguments)}; }

nlohmann::ordered_json tools_json(const std::vector<protocol::ToolDef>& tools) {
  return protocol::to_json_value(std::span(tools));
}

}  // namespace mnemo::daemon::app
