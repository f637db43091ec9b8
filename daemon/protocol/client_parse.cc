// parse_client_event: frame checks, the envelope (event_id, type), then one
// reader per event type. Field rules are docs/protocol.md's tables.
#include <algorithm>
#include <iterator>
#include <limits>
#include <utility>

#include "daemon/protocol/client_events.h"
#include "daemon/protocol/field_reader.h"
#include "daemon/protocol/json_intake.h"
#include "daemon/protocol/tool_limits.h"

namespace mnemo::daemon::protocol {

namespace {

using detail::fail_invalid;
using detail::fail_missing;
using detail::index_path;
using detail::ObjectReader;
using detail::read_object;
using detail::read_string;

constexpr size_t kUnbounded = std::numeric_limits<size_t>::max();

std::string id(const ObjectReader& r, std::string_view key) { return r.string(key, 1, kMaxIdBytes); }
std::optional<std::string> opt_id(const ObjectReader& r, std::string_view key) {
  return r.opt_string(key, 1, kMaxIdBytes);
}

[[noreturn]] void not_allowed(const std::string& path, const std::string& why) {
  throw ProtocolError(ErrorCode::InvalidField, path + ": " + why, path);
}

Json metadata(const ObjectReader& r) {
  const Json* m = r.find("metadata");
  if (!m) return Json::object();
  const std::string expected = "an object of at most " + std::to_string(kMaxMetadataBytes) + " bytes as compact JSON";
  if (!m->is_object()) fail_invalid(r.path("metadata"), expected, *m);
  if (m->dump(-1, ' ', false, Json::error_handler_t::replace).size() > kMaxMetadataBytes)
    fail_invalid(r.path("metadata"), expected, *m);
  return *m;
}

std::string tool_name(const ObjectReader& r, std::string_view key) {
  const std::string expected = "a name of 1 to 64 characters from a-z A-Z 0-9 _ -";
  const Json* v = r.find(key);
  if (!v) fail_missing(r.path(key), expected);
  if (!v->is_string() || !valid_tool_name(v->get_ref<const std::string&>())) fail_invalid(r.path(key), expected, *v);
  return v->get<std::string>();
}

// `type` of a tool or a named tool_choice: must be "function".
void function_type(const ObjectReader& r) {
  const Json* t = r.find("type");
  if (!t) fail_missing(r.path("type"), "\"function\"");
  if (!t->is_string() || *t != "function") fail_invalid(r.path("type"), "\"function\"", *t);
}

Sampling sampling(const ObjectReader& parent) {
  Sampling s;
  const Json* v = parent.opt_object("sampling");
  if (!v) return s;
  const ObjectReader r(*v, parent.path("sampling"));
  s.temperature = r.opt_number("temperature", 0, 2);
  s.top_p = r.opt_number("top_p", 0, 1, /*lo_open=*/true);
  s.top_k = r.opt_integer("top_k", 0, kMaxTokensLimit);
  s.min_p = r.opt_number("min_p", 0, 1);
  s.repetition_penalty = r.opt_number("repetition_penalty", 0, 10, /*lo_open=*/true);
  s.max_tokens = r.opt_integer("max_tokens", 1, kMaxTokensLimit);
  s.seed = r.opt_unsigned("seed");
  if (const Json* stop = r.find("stop")) {
    const std::string path = r.path("stop");
    if (stop->is_string()) {
      s.stop = std::vector<std::string>{read_string(*stop, path, 1, kMaxStopBytes)};
    } else if (stop->is_array() && stop->size() <= kMaxStopStrings) {
      s.stop.emplace();
      for (size_t i = 0; i < stop->size(); ++i)
        s.stop->push_back(read_string((*stop)[i], index_path(path, i), 1, kMaxStopBytes));
    } else {
      fail_invalid(path, "a string or an array of at most 16 strings", *stop);
    }
  }
  return s;
}

ToolDef tool(const Json& v, const std::string& path) {
  const ObjectReader r(read_object(v, path), path);
  function_type(r);
  const ObjectReader f(r.object("function"), r.path("function"));
  ToolDef t;
  t.name = tool_name(f, "name");
  t.description = f.opt_string("description", 0, kUnbounded);
  if (const Json* p = f.opt_object("parameters")) {
    if (auto why = schema_problem(*p)) not_allowed(f.path("parameters"), *why);
    t.parameters = *p;
  }
  return t;
}

std::vector<ToolDef> tools(const ObjectReader& r) {
  std::vector<ToolDef> out;
  const Json* arr = r.opt_array("tools", 0, kMaxTools);
  if (!arr) return out;
  if (compact_json_size(*arr) > kMaxToolsBytes)
    not_allowed(r.path("tools"), "the tool definitions take more than " + std::to_string(kMaxToolsBytes) +
                                     " bytes as compact JSON");
  for (size_t i = 0; i < arr->size(); ++i) {
    const std::string path = index_path(r.path("tools"), i);
    ToolDef t = tool((*arr)[i], path);
    for (const ToolDef& earlier : out)
      if (earlier.name == t.name) not_allowed(path + ".function.name", "a second tool named \"" + t.name + "\"");
    out.push_back(std::move(t));
  }
  return out;
}

ToolCall tool_call(const Json& v, const std::string& path) {
  const ObjectReader r(read_object(v, path), path);
  ToolCall c;
  c.id = id(r, "id");
  c.name = r.string("name", 1, kMaxNameBytes);
  if (const Json* a = r.opt_object("arguments")) c.arguments = *a;
  return c;
}

Role role(const ObjectReader& r) {
  const char* expected = "one of \"system\", \"user\", \"assistant\", \"tool\"";
  const Json* v = r.find("role");
  if (!v) fail_missing(r.path("role"), expected);
  if (*v == "system") return Role::System;
  if (*v == "user") return Role::User;
  if (*v == "assistant") return Role::Assistant;
  if (*v == "tool") return Role::Tool;
  fail_invalid(r.path("role"), expected, *v);
}

Message message(const Json& v, const std::string& path) {
  const ObjectReader r(read_object(v, path), path);
  Message m;
  m.role = role(r);
  if (const Json* calls = r.opt_array("tool_calls", 0, kMaxToolCalls)) {
    if (m.role != Role::Assistant) not_allowed(r.path("tool_calls"), "allowed only in assistant messages");
    for (size_t i = 0; i < calls->size(); ++i)
      m.tool_calls.push_back(tool_call((*calls)[i], index_path(r.path("tool_calls"), i)));
  }
  if (const Json* c = r.find("content")) m.content = read_string(*c, r.path("content"), 0, kUnbounded);
  else if (m.role != Role::Assistant || m.tool_calls.empty()) fail_missing(r.path("content"), "a string");
  if (m.role == Role::Tool) m.tool_call_id = id(r, "tool_call_id");
  else if (r.find("tool_call_id")) not_allowed(r.path("tool_call_id"), "allowed only in tool messages");
  m.name = r.opt_string("name", 1, kMaxNameBytes).value_or("");
  return m;
}

ToolChoice tool_choice(const Json& v, const std::string& path) {
  if (v.is_string()) {
    if (v == "none") return {ToolChoice::Mode::None, ""};
    if (v == "auto") return {ToolChoice::Mode::Auto, ""};
    if (v == "required") return {ToolChoice::Mode::Required, ""};
  }
  if (!v.is_object())
    fail_invalid(path, "\"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}", v);
  const ObjectReader r(v, path);
  function_type(r);
  const ObjectReader f(r.object("function"), r.path("function"));
  return {ToolChoice::Mode::Function, tool_name(f, "name")};
}

ClientEvent session_create(const ObjectReader& r) {
  SessionCreate e;
  e.system = r.opt_string("system", 0, kUnbounded).value_or("");
  e.sampling = sampling(r);
  e.tools = tools(r);
  e.metadata = metadata(r);
  if (const Json* m = r.find("memory")) {
    if (!m->is_object()) fail_invalid(r.path("memory"), "an object", *m);
    e.memory = *m;
  }
  return e;
}

ClientEvent session_resume(const ObjectReader& r) { return SessionResume{{}, id(r, "session_id")}; }
ClientEvent session_get(const ObjectReader& r) {
  SessionGet e;
  e.session_id = id(r, "session_id");
  e.limit = r.opt_integer("limit", 1, kMaxHistoryLimit).value_or(kDefaultHistoryLimit);
  e.before = r.opt_integer("before", 0, kMaxMessageIndex);
  return e;
}
ClientEvent session_delete(const ObjectReader& r) { return SessionDelete{{}, id(r, "session_id")}; }

ClientEvent session_list(const ObjectReader& r) {
  SessionList e;
  e.limit = r.opt_integer("limit", 1, kMaxListLimit).value_or(kDefaultListLimit);
  e.after = opt_id(r, "after");
  return e;
}

ClientEvent message_append(const ObjectReader& r) {
  MessageAppend e;
  e.session_id = id(r, "session_id");
  const Json* one = r.find("message");
  const Json* many = r.opt_array("messages", 1, kMaxAppendMessages);
  if (one && many) not_allowed(r.path("messages"), "give either message or messages, not both");
  if (!one && !many) fail_missing(r.path("message"), "a message, or messages: an array of them");
  if (one) e.messages.push_back(message(*one, r.path("message")));
  else
    for (size_t i = 0; i < many->size(); ++i) e.messages.push_back(message((*many)[i], index_path(r.path("messages"), i)));
  return e;
}

ClientEvent response_create(const ObjectReader& r) {
  ResponseCreate e;
  e.session_id = id(r, "session_id");
  e.sampling = sampling(r);
  if (const Json* tc = r.find("tool_choice")) e.tool_choice = tool_choice(*tc, r.path("tool_choice"));
  e.program_id = opt_id(r, "program_id");
  if (const Json* st = r.find("server_tools")) {
    if (st->is_boolean()) {
      e.server_tools = st->get<bool>();
    } else if (st->is_array() && !st->empty() && st->size() <= kMaxTools) {
      e.server_tools = true;
      for (size_t i = 0; i < st->size(); ++i)
        e.server_tool_names.push_back(detail::read_string((*st)[i], index_path(r.path("server_tools"), i), 1, kMaxNameBytes));
    } else {
      fail_invalid(r.path("server_tools"), "true, false or an array of 1 to " + std::to_string(kMaxTools) + " tool names", *st);
    }
  }
  if (auto n = r.opt_integer("max_tool_turns", 1, kMaxToolTurns)) e.max_tool_turns = *n;
  return e;
}

ClientEvent response_cancel(const ObjectReader& r) { return ResponseCancel{{}, id(r, "response_id")}; }

ClientEvent program_begin(const ObjectReader& r) {
  ProgramBegin e;
  e.program_id = opt_id(r, "program_id");
  e.session_id = opt_id(r, "session_id");
  e.metadata = metadata(r);
  return e;
}

ClientEvent program_end(const ObjectReader& r) { return ProgramEnd{{}, id(r, "program_id")}; }

ClientEvent tool_start(const ObjectReader& r) {
  ToolStart e;
  e.call_id = id(r, "call_id");
  e.name = r.string("name", 1, kMaxNameBytes);
  e.program_id = opt_id(r, "program_id");
  e.session_id = opt_id(r, "session_id");
  if (const Json* a = r.opt_object("arguments")) e.arguments = *a;
  return e;
}

ClientEvent tool_end(const ObjectReader& r) {
  ToolEnd e;
  e.call_id = id(r, "call_id");
  if (const Json* s = r.find("status")) {
    if (*s == "ok") e.status = ToolStatus::Ok;
    else if (*s == "error") e.status = ToolStatus::Error;
    else fail_invalid(r.path("status"), "\"ok\" or \"error\"", *s);
  }
  e.result = r.opt_string("result", 0, kUnbounded);
  return e;
}

ClientEvent tools_list(const ObjectReader&) { return ToolsList{}; }

ClientEvent ping(const ObjectReader&) { return Ping{}; }

struct Entry {
  std::string_view type;
  ClientEvent (*read)(const ObjectReader&);
};

constexpr Entry kEvents[] = {
    {"session.create", session_create}, {"session.resume", session_resume}, {"session.list", session_list},
    {"session.get", session_get},       {"session.delete", session_delete}, {"message.append", message_append},
    {"response.create", response_create}, {"response.cancel", response_cancel}, {"program.begin", program_begin},
    {"program.end", program_end},       {"tool.start", tool_start},         {"tool.end", tool_end},
    {"tools.list", tools_list},         {"ping", ping},
};
// type_name() indexes this table by the variant's index.
static_assert(std::size(kEvents) == std::variant_size_v<ClientEvent>);

Json parse_json(std::string_view text, const ParseOptions& options) {
  try {
    return parse_client_json(text, IntakeLimits{.max_bytes = options.max_frame_bytes});
  } catch (const IntakeError& e) {
    throw ProtocolError(e.kind() == IntakeError::Kind::TooLarge ? ErrorCode::FrameTooLarge : ErrorCode::InvalidJson,
                        e.what());
  }
}

}  // namespace

ClientEvent parse_client_event(std::string_view text, const ParseOptions& options) {
  const Json doc = parse_json(text, options);
  if (!doc.is_object())
    throw ProtocolError(ErrorCode::InvalidEvent, "expected a JSON object with a \"type\", got " + detail::describe(doc));
  const ObjectReader root(doc, "");

  std::optional<std::string> event_id = opt_id(root, "event_id");
  try {
    const Json* type = root.find("type");
    if (!type) throw ProtocolError(ErrorCode::InvalidEvent, "type is required (a string naming the event)", "type");
    if (!type->is_string())
      throw ProtocolError(ErrorCode::InvalidEvent,
                          "type: expected a string naming the event, got " + detail::describe(*type), "type");
    const auto& name = type->get_ref<const std::string&>();
    for (const Entry& entry : kEvents) {
      if (entry.type != name) continue;
      ClientEvent e = entry.read(root);
      std::visit([&](auto& ev) { ev.event_id = event_id; }, e);
      return e;
    }
    throw ProtocolError(ErrorCode::UnknownType, "unknown event type " + detail::describe(*type));
  } catch (ProtocolError& e) {
    e.set_event_id(event_id);
    throw;
  } catch (const Json::exception& e) {
    // A reader used nlohmann in a way its checks did not cover: a bug here,
    // but still the client's event that cannot be served.
    throw ProtocolError(ErrorCode::Internal, "internal error reading the event: " + json_error_message(e),
                        "", event_id);
  }
}

std::string_view type_name(const ClientEvent& e) { return kEvents[e.index()].type; }

const std::optional<std::string>& event_id_of(const ClientEvent& e) {
  return std::visit([](const auto& ev) -> const std::optional<std::string>& { return ev.event_id; }, e);
}

const std::vector<std::string_view>& client_event_types() {
  static const std::vector<std::string_view> types = [] {
    std::vector<std::string_view> out;
    for (const Entry& e : kEvents) out.push_back(e.type);
    return out;
  }();
  return types;
}

}  // namespace mnemo::daemon::protocol
