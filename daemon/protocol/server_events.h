#pragma once
// Server -> client events of docs/protocol.md, one struct per `type`, and
// their serialisers. event_id is the event_id of the client event being
// answered (absent when it had none).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemon/protocol/error.h"
#include "daemon/protocol/json.h"
#include "daemon/protocol/types.h"

namespace mnemo::daemon::protocol {

struct SessionCreated {  // "session.created"
  std::optional<std::string> event_id;
  Session session;
};

struct SessionResumed {  // "session.resumed"
  std::optional<std::string> event_id;
  Session session;
};

struct SessionListed {  // "session.listed"
  std::optional<std::string> event_id;
  std::vector<Session> sessions;
  bool has_more = false;
};

struct SessionHistory {  // "session.history": one page, ascending index
  std::optional<std::string> event_id;
  Session session;  // message_count is the whole history's
  std::vector<Message> messages;
  bool has_more = false;  // messages older than messages.front() exist
};

struct SessionDeleted {  // "session.deleted"
  std::optional<std::string> event_id;
  std::string session_id;
};

struct MessageAppended {  // "message.appended": the messages are on disk
  std::optional<std::string> event_id;
  std::string session_id;
  std::vector<int64_t> indices;
  int64_t message_count = 0;
};

struct ResponseCreated {  // "response.created"
  std::optional<std::string> event_id;
  std::string response_id;
  std::string session_id;
};

struct ResponseDelta {  // "response.delta"; no event_id
  std::string response_id;
  std::string delta;
};

struct ResponseToolCall {  // "response.tool_call"; no event_id
  std::string response_id;
  ToolCall tool_call;
};

struct ErrorBody {
  ErrorCode code = ErrorCode::Internal;
  std::string message;
};

struct ResponseDone {  // "response.done"
  std::optional<std::string> event_id;  // the response.create's
  std::string response_id;
  std::string session_id;
  FinishReason finish_reason = FinishReason::Stop;
  Message message;  // index set iff stored (stores_message(finish_reason))
  Usage usage;                     // summed over the response's turns
  int64_t tool_turns = 0;          // rounds of server-side tool calls run
  std::optional<ErrorBody> error;  // with FinishReason::Error only
};

struct ProgramBegun {  // "program.begun"
  std::optional<std::string> event_id;
  std::string program_id;
  std::optional<std::string> session_id;
  int64_t started_at = 0;
};

struct ProgramEnded {  // "program.ended"
  std::optional<std::string> event_id;
  std::string program_id;
  double duration_ms = 0;
};

struct ToolStarted {  // "tool.started"
  std::optional<std::string> event_id;
  std::string call_id;
  int64_t started_at = 0;
};

struct ToolEnded {  // "tool.ended"
  std::optional<std::string> event_id;
  std::string call_id;
  ToolStatus status = ToolStatus::Ok;
  double duration_ms = 0;
};

struct ToolsListed {  // "tools.listed"
  std::optional<std::string> event_id;
  Json tools = Json::array();  // [{name, description, parameters, provider, kind}]
};

// A tool the daemon runs for a response (server_tools); no event_id.
struct ServerToolStart {  // "tool.start"
  std::string response_id;
  std::string session_id;
  std::string call_id;
  std::string name;
  Json arguments = Json::object();
  std::optional<std::string> program_id;
};

struct ServerToolEnd {  // "tool.end"
  std::string response_id;
  std::string session_id;
  std::string call_id;
  std::string name;
  ToolStatus status = ToolStatus::Ok;
  double duration_ms = 0;
  int64_t output_bytes = 0;
  std::string output;                // what the model reads
  std::optional<std::string> error;  // why it failed: "timeout", "crashed", ...
};

struct Pong {  // "pong"
  std::optional<std::string> event_id;
};

struct ErrorEvent {  // "error"
  std::optional<std::string> event_id;
  ErrorCode code = ErrorCode::Internal;
  std::string message;
  std::string field;  // "" when none
};

// The error event answering a refused client event.
ErrorEvent error_event(const ProtocolError& e);

using ServerEvent = std::variant<SessionCreated, SessionResumed, SessionListed, SessionHistory, SessionDeleted,
                                 MessageAppended, ResponseCreated, ResponseDelta, ResponseToolCall, ResponseDone,
                                 ProgramBegun, ProgramEnded, ToolStarted, ToolEnded, ToolsListed, ServerToolStart,
                                 ServerToolEnd, Pong, ErrorEvent>;

// The JSON object (fields in docs/protocol.md's order) and its compact text.
// Never throws on odd text: invalid UTF-8 is replaced with U+FFFD.
Json to_json_value(const ServerEvent& e);
std::string to_json(const ServerEvent& e);

std::string_view type_name(const ServerEvent& e);
// Every server event type, in the order of docs/protocol.md.
const std::vector<std::string_view>& server_event_types();

}  // namespace mnemo::daemon::protocol
