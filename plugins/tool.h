#pragma once
// What every tool provider offers the daemon: a list of tools and a call
// that ends by a deadline. Providers never touch the engine (DESIGN.md).
#include <chrono>
#include <cstddef>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mnemo::plugins {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// One tool as the model sees it (an OpenAI function definition's fields).
struct ToolSpec {
  std::string name;  // the provider's own name for it
  std::string description;
  Json parameters = Json{{"type", "object"}, {"properties", Json::object()}};  // JSON schema of the arguments
};

// Why a call did not produce the tool's own answer.
enum class Failure {
  None,          // the tool answered (it may still report is_error itself)
  Timeout,       // past the deadline: the call was cancelled or killed
  Cancelled,     // the caller gave up (response.cancel, shutdown)
  TooLarge,      // output over the tool's byte cap
  Crashed,       // the process or server died mid-call
  Unavailable,   // the provider is not running (starting, restarting, stopped)
  InvalidOutput, // the tool's answer was not what its protocol allows
  Busy,          // the tool's concurrency limit stayed full until the deadline
  Unknown,       // no tool by that name
};
const char* to_string(Failure f);

struct ToolResult {
  std::string output;     // text (JSON text for structured results); the error message on failure
  bool is_error = false;  // the model sees it as an error result
  Failure failure = Failure::None;
};

struct CallLimits {
  Clock::time_point deadline;
  size_t max_output_bytes = 1 << 20;
};

class Provider {
 public:
  virtual ~Provider() = default;
  // The configured name ("everything", "word_count", ...).
  virtual const std::string& name() const = 0;
  // "mcp", "plugin" or "command".
  virtual const char* kind() const = 0;
  // Starts processes or loads libraries. Throws std::runtime_error with the
  // reason; an MCP server that fails to start is retried in the background
  // instead (its tools appear when it is up).
  virtual void start() = 0;
  // The tools offered now (may change: MCP's notifications/tools/list_changed).
  virtual std::vector<ToolSpec> tools() const = 0;
  // Never throws for anything the tool does: failures come back as a result
  // with is_error set. `cancel` is requested when the caller gives up.
  virtual ToolResult call(const std::string& tool, const Json& arguments, const CallLimits& limits,
                          std::stop_token cancel) = 0;
  // Stops processes; pending calls end Unavailable. Idempotent.
  virtual void stop() = 0;
};

// A failed result with the message the model will read.
inline ToolResult failed(Failure f, std::string message) { return ToolResult{std::move(message), true, f}; }

}  // namespace mnemo::plugins
