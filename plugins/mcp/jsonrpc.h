#pragma once
// JSON-RPC 2.0 as MCP uses it: requests, notifications and responses, one
// message per line on stdio. Building never fails; reading a message that is
// not valid JSON-RPC throws ProtocolError saying what was wrong.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "plugins/tool.h"

namespace mnemo::plugins::mcp {

// A line from a server that is not a JSON-RPC 2.0 message.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The error codes the JSON-RPC 2.0 specification reserves.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;

enum class MessageKind { Request, Notification, Result, Error };
const char* to_string(MessageKind k);

struct Message {
  MessageKind kind = MessageKind::Notification;
  Json id;             // Request, Result, Error: a string or an integer (null in an Error that names no request)
  std::string method;  // Request, Notification
  Json params;         // Request, Notification: an object, an array, or null when absent
  Json result;         // Result
  int error_code = 0;  // Error
  std::string error_message;
  Json error_data;     // Error: null when absent
};

// Classifies one message. Throws ProtocolError naming the field.
Message classify(const Json& message);
// Parses one line (without its newline) and classifies it.
Message parse_line(std::string_view line);

// Builders; `params` null leaves the member out.
Json make_request(const Json& id, std::string_view method, const Json& params = nullptr);
Json make_notification(std::string_view method, const Json& params = nullptr);
Json make_result(const Json& id, const Json& result);
Json make_error(const Json& id, int code, std::string_view message);

// One line of the stdio transport, newline included. JSON text never holds a
// raw newline (they are escaped inside strings); invalid UTF-8 is replaced
// rather than thrown on, since arguments come from model output.
std::string to_line(const Json& message);

// A short, bounded rendering of an id for logs and messages.
std::string id_text(const Json& id);

}  // namespace mnemo::plugins::mcp
