#include "daemon/protocol/server_events.h"

#include <iterator>
#include <span>

namespace mnemo::daemon::protocol {

namespace {

Json head(std::string_view type, const std::optional<std::string>& event_id) {
  Json j = Json::object();
  j["type"] = type;
  if (event_id) j["event_id"] = *event_id;
  return j;
}

Json sessions(const std::vector<Session>& list) {
  Json a = Json::array();
  for (const Session& s : list) a.push_back(to_json_value(s));
  return a;
}

Json body(const SessionCreated& e) {
  Json j = head("session.created", e.event_id);
  j["session"] = to_json_value(e.session);
  return j;
}

Json body(const SessionResumed& e) {
  Json j = head("session.resumed", e.event_id);
  j["session"] = to_json_value(e.session);
  return j;
}

Json body(const SessionListed& e) {
  Json j = head("session.listed", e.event_id);
  j["sessions"] = sessions(e.sessions);
  j["has_more"] = e.has_more;
  return j;
}

Json body(const SessionHistory& e) {
  Json j = head("session.history", e.event_id);
  j["session"] = to_json_value(e.session);
  Json msgs = Json::array();
  for (const Message& m : e.messages) msgs.push_back(to_json_value(m));
  j["messages"] = std::move(msgs);
  j["has_more"] = e.has_more;
  return j;
}

Json body(const SessionDeleted& e) {
  Json j = head("session.deleted", e.event_id);
  j["session_id"] = e.session_id;
  return j;
}

Json body(const MessageAppended& e) {
  Json j = head("message.appended", e.event_id);
  j["session_id"] = e.session_id;
  j["indices"] = e.indices;
  j["message_count"] = e.message_count;
  return j;
}

Json body(const ResponseCreated& e) {
  Json j = head("response.created", e.event_id);
  j["response_id"] = e.response_id;
  j["session_id"] = e.session_id;
  return j;
}

Json body(const ResponseDelta& e) {
  Json j = head("response.delta", std::nullopt);
  j["response_id"] = e.response_id;
  j["delta"] = e.delta;
  return j;
}

Json body(const ResponseToolCall& e) {
  Json j = head("response.tool_call", std::nullopt);
  j["response_id"] = e.response_id;
  j["tool_call"] = to_json_value(e.tool_call);
  return j;
}

Json body(const ResponseDone& e) {
  Json j = head("response.done", e.event_id);
  j["response_id"] = e.response_id;
  j["session_id"] = e.session_id;
  j["finish_reason"] = to_string(e.finish_reason);
  j["message"] = to_json_value(e.message);
  j["usage"] = to_json_value(e.usage);
  j["tool_turns"] = e.tool_turns;
  if (e.error) {
    Json err = Json::object();
    err["code"] = to_string(e.error->code);
    err["message"] = e.error->message;
    j["error"] = std::move(err);
  }
  return j;
}

Json body(const ProgramBegun& e) {
  Json j = head("program.begun", e.event_id);
  j["program_id"] = e.program_id;
  if (e.session_id) j["session_id"] = *e.session_id;
  j["started_at"] = e.started_at;
  return j;
}

Json body(const ProgramEnded& e) {
  Json j = head("program.ended", e.event_id);
  j["program_id"] = e.program_id;
  j["duration_ms"] = e.duration_ms;
  return j;
}

Json body(const ToolStarted& e) {
  Json j = head("tool.started", e.event_id);
  j["call_id"] = e.call_id;
  j["started_at"] = e.started_at;
  return j;
}

Json body(const ToolEnded& e) {
  Json j = head("tool.ended", e.event_id);
  j["call_id"] = e.call_id;
  j["status"] = to_string(e.status);
  j["duration_ms"] = e.duration_ms;
  return j;
}

Json body(const ToolsListed& e) {
  Json j = head("tools.listed", e.event_id);
  j["tools"] = e.tools;
  return j;
}

Json body(const ServerToolStart& e) {
  Json j = head("tool.start", std::nullopt);
  j["response_id"] = e.response_id;
  j["session_id"] = e.session_id;
  j["call_id"] = e.call_id;
  j["name"] = e.name;
  j["arguments"] = e.arguments;
  if (e.program_id) j["program_id"] = *e.program_id;
  return j;
}

Json body(const ServerToolEnd& e) {
  Json j = head("tool.end", std::nullopt);
  j["response_id"] = e.response_id;
  j["session_id"] = e.session_id;
  j["call_id"] = e.call_id;
  j["name"] = e.name;
  j["status"] = to_string(e.status);
  j["duration_ms"] = e.duration_ms;
  j["output_bytes"] = e.output_bytes;
  j["output"] = e.output;
  if (e.error) j["error"] = *e.error;
  return j;
}

Json body(const Pong& e) { return head("pong", e.event_id); }

Json body(const ErrorEvent& e) {
  Json j = head("error", e.event_id);
  j["code"] = to_string(e.code);
  j["message"] = e.message;
  if (!e.field.empty()) j["field"] = e.field;
  return j;
}

constexpr std::string_view kTypes[] = {
    "session.created",  "session.resumed",    "session.listed", "session.history", "session.deleted",
    "message.appended", "response.created",   "response.delta", "response.tool_call", "response.done",
    "program.begun",    "program.ended",      "tool.started",   "tool.ended",      "tools.listed",
    "tool.start",       "tool.end",           "pong",
    "error",
};
static_assert(std::size(kTypes) == std::variant_size_v<ServerEvent>);

}  // namespace

ErrorEvent error_event(const ProtocolError& e) { return ErrorEvent{e.event_id(), e.code(), e.what(), e.field()}; }

Json to_json_value(const ServerEvent& e) {
  return std::visit([](const auto& ev) { return body(ev); }, e);
}

std::string to_json(const ServerEvent& e) {
  return to_json_value(e).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string_view type_name(const ServerEvent& e) { return kTypes[e.index()]; }

const std::vector<std::string_view>& server_event_types() {
  static const std::vector<std::string_view> types(std::begin(kTypes), std::end(kTypes));
  return types;
}

}  // namespace mnemo::daemon::protocol
