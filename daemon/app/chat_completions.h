#pragma once
// Parsing of OpenAI's POST /v1/chat/completions body into a ResponseSpec,
// with Continuum's program fields. Throws BadRequest naming the field.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/app/response_spec.h"

namespace mnemo::daemon::app {

// Continuum's per-request fields (top level, or inside vllm_xargs).
struct ProgramInfo {
  std::optional<std::string> job_id;
  bool is_last_step = false;
  std::optional<std::string> this_func_call, last_func_call;
};

struct ChatCompletionRequest {
  ResponseSpec spec;
  bool stream = false;
  bool include_usage = false;
  std::string model;
  ProgramInfo program;
};

ChatCompletionRequest parse_chat_completion(const nlohmann::json& body);

}  // namespace mnemo::daemon::app
