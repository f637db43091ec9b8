#pragma once
// What a client submits to the Engine and what comes back on its stream.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/generation/generate.h"

namespace mnemo::engine {

using RequestId = uint64_t;

struct Request {
  std::vector<int32_t> prompt;
  GenerateOptions options;
};

struct RequestStats {
  double queue_seconds = 0;  // submit -> first scheduled
  double ttft_seconds = 0;   // submit -> first token
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens reused from a cache, not computed
  int64_t generated_tokens = 0;
  std::vector<double> inter_token_seconds;
};

struct StreamEvent {
  enum class Kind { Token, Done, Error };
  Kind kind = Kind::Token;
  int32_t token = -1;   // Token
  std::string text;     // Token: newly completed text (may be empty mid-UTF-8)
  std::string finish_reason;  // Done: "stop", "length", "cancelled", "shutdown"
  std::string error;          // Error
  RequestStats stats;         // Done and Error
};

}  // namespace mnemo::engine
