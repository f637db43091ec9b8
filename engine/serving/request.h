#pragma once
// What a client submits to the Engine and what comes back on its stream.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/generation/generate.h"
#include "engine/generation/logits_constraint.h"
#include "engine/sampling/logprobs.h"

namespace mnemo::engine {

using RequestId = uint64_t;

// Logits a request wants delivered besides its tokens.
enum class LogitsOutput {
  None,
  Last,  // the last prompt position's row, once the prompt is computed
  All,   // every prompt position (computes the whole prompt: no prefix-cache reuse)
};

// The agent program a request is one turn of (Continuum). id 0: a one-turn
// program of its own, never merged with others.
struct ProgramTurn {
  uint64_t id = 0;
  // The program's first arrival (program-level FCFS key); default: the request's submit time.
  std::chrono::steady_clock::time_point arrival{};
  // After this turn finishes, park its KV under the program until Engine::retain decides.
  bool hold_after = false;
};

struct Request {
  std::vector<int32_t> prompt;
  GenerateOptions options;
  // Isolates tenants in the prefix cache: only requests with the same salt share cached blocks.
  uint64_t cache_salt = 0;
  LogitsOutput logits = LogitsOutput::None;
  // When set, every sampled token obeys it and the request ends once it is done.
  std::shared_ptr<LogitsConstraint> constraint;
  ProgramTurn program;
  // A KV snapshot (KvCacheManager::export_sequence) of a strict prefix of
  // prompt, possibly compacted (a compressed history): the request starts
  // from it and computes only the prompt tokens after it, at their true
  // positions. Checked at submit, token by token (and its salt against
  // cache_salt): one that does not fit is ignored (debug log) and the
  // request runs as without it. Shared: one snapshot serves many requests.
  std::shared_ptr<const std::vector<uint8_t>> start_kv;
};

struct RequestStats {
  double queue_seconds = 0;  // submit -> first scheduled
  double ttft_seconds = 0;   // submit -> first token
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens reused from the prefix cache or start_kv, not computed
  int64_t restored_tokens = 0;  // of those, prompt tokens brought back from the host tier
  int64_t generated_tokens = 0;
  int64_t preemptions = 0;
  std::vector<double> inter_token_seconds;
};

struct StreamEvent {
  enum class Kind { Token, Logits, Done, Error };
  Kind kind = Kind::Token;
  int32_t token = -1;   // Token
  std::string text;     // Token: newly completed text (may be empty mid-UTF-8)
  // Token: set when the request asked for options.sampling.logprobs (the
  // token's log-probability and its top_logprobs alternatives); empty
  // otherwise, so a request without them allocates nothing for it.
  std::optional<TokenLogprobs> logprobs;
  int64_t first_row = 0;      // Logits: prompt position of the first row
  std::vector<float> logits;  // Logits: rows of vocab_size values
  std::string finish_reason;  // Done: "stop", "length", "cancelled", "shutdown"
  std::string error;          // Error
  RequestStats stats;         // Done and Error
};

}  // namespace mnemo::engine
