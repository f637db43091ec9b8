#pragma once
// The values the store reads and writes. Times are unix milliseconds chosen
// by the caller, so tests and the daemon agree on one clock. JSON fields are
// stored as text; a null JSON value is stored as SQL NULL.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mnemo::daemon::store {

struct SessionRecord {
  std::string id;  // e.g. "sess_" + 16 hex chars, chosen by the caller
  int64_t created_at = 0;
  int64_t updated_at = 0;  // 0 on create means created_at; bumped by appends and touches
  std::string model;
  std::string system_prompt;
  nlohmann::ordered_json sampling;  // default sampling parameters for responses
  nlohmann::ordered_json tools;     // tool definitions, OpenAI shape
  nlohmann::ordered_json metadata;  // opaque to the daemon
  nlohmann::ordered_json memory;    // session memory setting (compressed history); null: none
};

enum class Role { System, User, Assistant, Tool };
std::string_view role_name(Role r);
Role parse_role(std::string_view s);  // throws InvalidRecord

struct MessageRecord {
  int64_t seq = 0;  // 1, 2, 3... within a session; assigned by append
  Role role = Role::User;
  std::string content;
  nlohmann::ordered_json tool_calls;             // assistant: array of calls (id, name, arguments)
  std::optional<std::string> tool_call_id;  // tool: the call this result answers
  std::optional<std::string> name;          // tool: the tool's name
  int64_t created_at = 0;
  nlohmann::ordered_json usage;  // assistant: token counts, optional
};

// A Responses API response: its messages are seqs [input_from, output_from)
// (its input) and [output_from, output_to) (its output) of its session.
struct ResponseRecord {
  std::string id;
  std::string session_id;
  std::optional<std::string> previous_id;
  int64_t input_from = 0, output_from = 0, output_to = 0;  // set by save_response
  int64_t created_at = 0;
  nlohmann::ordered_json json;  // the response object as returned
};

// One agent program (Continuum): a chain of LLM turns and tool calls.
struct ProgramRecord {
  std::string id;
  std::optional<std::string> session_id;  // programs from plain HTTP have none
  std::optional<std::string> job_id;      // Continuum's job_id, when given
  int64_t started_at = 0;
  std::optional<int64_t> ended_at;  // set by end_program
  nlohmann::ordered_json metadata;
};

enum class ToolStatus { Ok, Error };
std::string_view tool_status_name(ToolStatus s);
ToolStatus parse_tool_status(std::string_view s);  // throws InvalidRecord

struct ToolCallRecord {
  std::string id;  // the call id the model or client gave it
  std::optional<std::string> program_id;
  std::optional<std::string> session_id;
  std::string name;
  nlohmann::ordered_json arguments;
  int64_t started_at = 0;
  // Set by end_tool_call.
  std::optional<int64_t> ended_at;
  std::optional<ToolStatus> status;
  std::optional<std::string> result;
};

// One LLM request inside a program, with Continuum's per-request fields.
struct TurnRecord {
  int64_t id = 0;  // assigned by record_turn, increasing
  std::string program_id;
  std::optional<std::string> job_id;
  bool is_last_step = false;
  std::optional<std::string> this_func_call;  // the tool this turn is expected to call
  std::optional<std::string> last_func_call;  // the tool called before this turn
  int64_t started_at = 0;
  std::optional<int64_t> ended_at;  // set by end_turn when the response is done
};

}  // namespace mnemo::daemon::store
