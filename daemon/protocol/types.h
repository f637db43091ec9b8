#pragma once
// The objects of docs/protocol.md ("Objects"): what sessions, messages,
// tools and tool calls look like on the wire, shared by client and server
// events.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/protocol/json.h"
#include "daemon/protocol/sampling.h"

namespace mnemo::daemon::protocol {

enum class Role { System, User, Assistant, Tool };
std::string_view to_string(Role r);  // "system", "user", "assistant", "tool"

enum class FinishReason { Stop, Length, ToolCalls, Cancelled, Error, Shutdown };
std::string_view to_string(FinishReason r);  // "stop", ..., "tool_calls", ...
// True for the reasons whose message is appended to the session.
bool stores_message(FinishReason r);

enum class ToolStatus { Ok, Error };
std::string_view to_string(ToolStatus s);  // "ok", "error"

// An OpenAI-style function tool; on the wire
// {"type": "function", "function": {name, description?, parameters?}}.
struct ToolDef {
  std::string name;
  std::optional<std::string> description;
  std::optional<Json> parameters;  // a JSON Schema object, keys in the client's order
  bool operator==(const ToolDef&) const = default;
};

// A call the model made. arguments is an object (not JSON text).
struct ToolCall {
  std::string id;
  std::string name;
  Json arguments = Json::object();
  bool operator==(const ToolCall&) const = default;
};

struct Message {
  Role role = Role::User;
  std::string content;
  std::vector<ToolCall> tool_calls;  // assistant only
  std::string tool_call_id;          // tool only; "" otherwise
  std::string name;                  // "" when none
  std::optional<int64_t> index;      // set once stored in a session
  int64_t created_at = 0;            // ms since the epoch; 0 in client input
  bool operator==(const Message&) const = default;
};

struct Session {
  std::string id;
  int64_t created_at = 0;  // ms since the epoch
  int64_t updated_at = 0;
  std::string system;
  Sampling sampling;
  std::vector<ToolDef> tools;
  Json metadata = Json::object();
  int64_t message_count = 0;
  Json memory;  // the session's memory setting; null: none (full history, the prefix cache)
  bool operator==(const Session&) const = default;
};

struct ToolChoice {
  enum class Mode { None, Auto, Required, Function };
  Mode mode = Mode::Auto;
  std::string function;  // Mode::Function: the tool's name
  bool operator==(const ToolChoice&) const = default;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t completion_tokens = 0;
  Json memory;  // a compressed history's policy and held tokens; null: none
  bool operator==(const Usage&) const = default;
};

Json to_json_value(const ToolDef& t);
// The tools array as chat templates take it (OpenAI format).
Json to_json_value(std::span<const ToolDef> tools);
Json to_json_value(const ToolCall& c);
Json to_json_value(const Message& m);
Json to_json_value(const Session& s);
Json to_json_value(const Usage& u);

}  // namespace mnemo::daemon::protocol
