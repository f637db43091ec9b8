#pragma once
// Client -> server events of docs/protocol.md, one struct per `type`, and
// the parser that turns one WebSocket text message into one of them.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemon/protocol/error.h"
#include "daemon/protocol/json.h"
#include "daemon/protocol/limits.h"
#include "daemon/protocol/sampling.h"
#include "daemon/protocol/types.h"

namespace mnemo::daemon::protocol {

struct SessionCreate {  // "session.create"
  std::optional<std::string> event_id;
  std::string system;
  Sampling sampling;
  std::vector<ToolDef> tools;
  Json metadata = Json::object();
  Json memory;  // null, or the object as sent: the daemon checks its fields (session memory)
};

struct SessionResume {  // "session.resume"
  std::optional<std::string> event_id;
  std::string session_id;
};

struct SessionList {  // "session.list"
  std::optional<std::string> event_id;
  int64_t limit = kDefaultListLimit;
  std::optional<std::string> after;
};

// session.get pages a history backwards from `before`.
inline constexpr int64_t kMaxHistoryLimit = 1000;
inline constexpr int64_t kDefaultHistoryLimit = 100;
inline constexpr int64_t kMaxMessageIndex = (int64_t(1) << 53) - 1;  // exact in every JSON reader

struct SessionGet {  // "session.get"
  std::optional<std::string> event_id;
  std::string session_id;
  int64_t limit = kDefaultHistoryLimit;
  std::optional<int64_t> before;  // a message index, exclusive; absent: past the newest
};

struct SessionDelete {  // "session.delete"
  std::optional<std::string> event_id;
  std::string session_id;
};

struct MessageAppend {  // "message.append"; `message` or `messages`, in order
  std::optional<std::string> event_id;
  std::string session_id;
  std::vector<Message> messages;  // index unset, created_at 0
};

struct ResponseCreate {  // "response.create"
  std::optional<std::string> event_id;
  std::string session_id;
  Sampling sampling;                      // overrides for this response
  std::optional<ToolChoice> tool_choice;  // absent: auto with tools, none without
  std::optional<std::string> program_id;
  // The daemon runs the tools of its --tools file when the model calls
  // them, and goes on generating, for at most max_tool_turns rounds.
  bool server_tools = false;
  std::vector<std::string> server_tool_names;  // empty: all of them ("server_tools": true)
  int64_t max_tool_turns = kDefaultMaxToolTurns;
};

struct ResponseCancel {  // "response.cancel"
  std::optional<std::string> event_id;
  std::string response_id;
};

struct ProgramBegin {  // "program.begin"
  std::optional<std::string> event_id;
  std::optional<std::string> program_id;  // absent: the server makes one
  std::optional<std::string> session_id;
  Json metadata = Json::object();
};

struct ProgramEnd {  // "program.end"
  std::optional<std::string> event_id;
  std::string program_id;
};

struct ToolStart {  // "tool.start"
  std::optional<std::string> event_id;
  std::string call_id;
  std::string name;
  std::optional<std::string> program_id;
  std::optional<std::string> session_id;
  std::optional<Json> arguments;  // an object when present
};

struct ToolEnd {  // "tool.end"
  std::optional<std::string> event_id;
  std::string call_id;
  ToolStatus status = ToolStatus::Ok;
  std::optional<std::string> result;
};

struct ToolsList {  // "tools.list": the tools of mnemod's --tools file
  std::optional<std::string> event_id;
};

struct Ping {  // "ping"
  std::optional<std::string> event_id;
};

using ClientEvent = std::variant<SessionCreate, SessionResume, SessionList, SessionGet, SessionDelete, MessageAppend,
                                 ResponseCreate, ResponseCancel, ProgramBegin, ProgramEnd, ToolStart, ToolEnd, ToolsList, Ping>;

struct ParseOptions {
  size_t max_frame_bytes = kDefaultMaxFrameBytes;  // mnemod passes --max-frame-bytes
};

// One WebSocket text message -> one event. Throws ProtocolError (and
// nothing else) for anything docs/protocol.md does not allow, with the
// event's event_id whenever the text was a JSON object with a valid one.
ClientEvent parse_client_event(std::string_view text, const ParseOptions& options = {});

// The event's `type` string and event_id.
std::string_view type_name(const ClientEvent& e);
const std::optional<std::string>& event_id_of(const ClientEvent& e);

// Every client event type, in the order of docs/protocol.md.
const std::vector<std::string_view>& client_event_types();

}  // namespace mnemo::daemon::protocol
