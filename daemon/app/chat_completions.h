#pragma once
// Parsing of OpenAI's POST /v1/chat/completions body into a ResponseSpec,
// with Continuum's program fields. Throws BadRequest naming the field. The
// bounds are the WebSocket protocol's (daemon/protocol/limits.h).
#include <optional>
#include <string>

#include <string_view>

#include "daemon/app/response_spec.h"
#include "daemon/protocol/json.h"
#include "daemon/protocol/json_intake.h"

namespace mnemo::daemon::app {

// Continuum's per-request fields (top level, or inside vllm_xargs).
struct ProgramInfo {
  std::optional<std::string> job_id;
  bool is_last_step = false;
  std::optional<std::string> this_func_call, last_func_call;
};

struct ChatCompletionRequest {
  // n: independent choices of one prompt (Responder::start with n sinks).
  static constexpr int kMaxChoices = 8;
  ResponseSpec spec;
  int n = 1;
  // The legacy `functions` / `function_call` were used: the answer names
  // its call `function_call`, as OpenAI's does for them.
  bool legacy_functions = false;
  bool stream = false;
  bool include_usage = false;
  std::string model;
  ProgramInfo program;
};

// OpenAI chat-completions tools ({type: "function", function: {name,
// description, parameters}}), checked against the protocol's bounds, into
// `out`. Throws BadRequest naming the tool.
void parse_tools(const protocol::Json& tools, protocol::Json& out);

// The body's bytes go through the shared JSON intake first (size, depth,
// elements; a refusal there is protocol::IntakeError), then the fields.
ChatCompletionRequest parse_chat_completion(std::string_view body, const protocol::IntakeLimits& limits);
ChatCompletionRequest parse_chat_completion(const protocol::Json& body);

}  // namespace mnemo::daemon::app
