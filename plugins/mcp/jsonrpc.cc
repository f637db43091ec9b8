#include "plugins/mcp/jsonrpc.h"

#include "plugins/json_depth.h"

namespace mnemo::plugins::mcp {

namespace {

[[noreturn]] void bad(const std::string& what) { throw ProtocolError("invalid JSON-RPC message: " + what); }

// JSON-RPC allows a string, a number or null as id; MCP narrows requests to
// strings and integers, and a fractional id could not be echoed exactly.
bool valid_id(const Json& id) { return id.is_string() || id.is_number_integer(); }

void check_params(const Json& m) {
  if (!m.contains("params")) return;
  const Json& p = m["params"];
  if (!p.is_object() && !p.is_array()) bad("'params' must be an object or an array");
}

}  // namespace

const char* to_string(MessageKind k) {
  switch (k) {
    case MessageKind::Request: return "request";
    case MessageKind::Notification: return "notification";
    case MessageKind::Result: return "result";
    case MessageKind::Error: return "error";
  }
  return "?";
}

Message classify(const Json& m) {
  if (m.is_array()) bad("batches are not supported (MCP 2025-06-18 removed them)");
  if (!m.is_object()) bad(std::string("expected an object, got ") + m.type_name());
  const auto v = m.find("jsonrpc");
  if (v == m.end() || !v->is_string() || *v != "2.0") bad("'jsonrpc' must be \"2.0\"");
  Message out;
  const bool has_id = m.contains("id");
  if (m.contains("method")) {
    const Json& method = m["method"];
    if (!method.is_string() || method.get_ref<const std::string&>().empty()) bad("'method' must be a non-empty string");
    if (m.contains("result") || m.contains("error")) bad("a request cannot carry 'result' or 'error'");
    check_params(m);
    out.method = method.get<std::string>();
    out.params = m.value("params", Json());
    if (!has_id) {
      out.kind = MessageKind::Notification;
      return out;
    }
    if (!valid_id(m["id"])) bad("request 'id' must be a string or an integer");
    out.kind = MessageKind::Request;
    out.id = m["id"];
    return out;
  }
  const bool has_result = m.contains("result"), has_error = m.contains("error");
  if (has_result == has_error) bad("a response needs exactly one of 'result' and 'error' (or a 'method')");
  if (!has_id) bad("a response needs an 'id'");
  const Json& id = m["id"];
  if (has_result) {
    if (!valid_id(id)) bad("response 'id' must be a string or an integer");
    out.kind = MessageKind::Result;
    out.id = id;
    out.result = m["result"];
    return out;
  }
  if (!valid_id(id) && !id.is_null()) bad("error 'id' must be a string, an integer or null");
  const Json& e = m["error"];
  if (!e.is_object()) bad("'error' must be an object");
  const auto code = e.find("code");
  if (code == e.end() || !code->is_number_integer()) bad("'error.code' must be an integer");
  const auto msg = e.find("message");
  if (msg == e.end() || !msg->is_string()) bad("'error.message' must be a string");
  out.kind = MessageKind::Error;
  out.id = id;
  out.error_code = code->get<int>();
  out.error_message = msg->get<std::string>();
  out.error_data = e.value("data", Json());
  return out;
}

Message parse_line(std::string_view line) {
  if (json_depth(line) > kMaxJsonDepth)
    throw ProtocolError("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  Json j;
  try {
    j = Json::parse(line);
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range for a number too large for any type.
    throw ProtocolError(std::string("not JSON: ") + e.what());
  }
  return classify(j);
}

Json make_request(const Json& id, std::string_view method, const Json& params) {
  Json m{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) m["params"] = params;
  return m;
}

Json make_notification(std::string_view method, const Json& params) {
  Json m{{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) m["params"] = params;
  return m;
}

Json make_result(const Json& id, const Json& result) { return Json{{"jsonrpc", "2.0"}, {"id", id}, {"result", result}}; }

Json make_error(const Json& id, int code, std::string_view message) {
  return Json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

std::string to_line(const Json& message) {
  std::string s = message.dump(-1, ' ', false, Json::error_handler_t::replace);
  s.push_back('\n');
  return s;
}

std::string id_text(const Json& id) {
  std::string s = id.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 64) s = s.substr(0, 64) + "...";
  return s;
}

}  // namespace mnemo::plugins::mcp
