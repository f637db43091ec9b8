#pragma once
// One request inside the engine: its tokens, how many are in the KV cache,
// and the per-request decoding state.
#include <chrono>
#include <memory>
#include <optional>

#include "engine/generation/stop_matcher.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/sampling/sampler.h"
#include "engine/serving/request.h"
#include "engine/serving/token_stream.h"
#include "engine/tokenizer/tokenizer.h"

namespace mnemo::engine {

// Waiting: never admitted, or preempted (its KV freed for recompute, or
// swapped out to `swapped`). Running: holds a sequence in the paged cache.
enum class SeqState { Waiting, Running, Finished };

struct Sequence {
  using Clock = std::chrono::steady_clock;

  Sequence(RequestId id, Request req, const Tokenizer& tok, std::shared_ptr<TokenStream> stream)
      : id(id),
        request(std::move(req)),
        tokens(request.prompt),
        sampler(request.options.sampling),
        stops(request.options.stop_strings),
        decoder(tok),
        stream(std::move(stream)),
        submitted(Clock::now()) {
    if (request.program.arrival == Clock::time_point{}) request.program.arrival = submitted;
  }

  int64_t prompt_len() const { return int64_t(request.prompt.size()); }
  int64_t generated() const { return int64_t(tokens.size()) - prompt_len(); }
  // Tokens not yet in the KV cache (a prefill remainder, or the last sample).
  int64_t uncomputed() const { return int64_t(tokens.size()) - num_computed; }
  bool in_prompt() const { return num_computed < prompt_len(); }

  RequestId id;
  Request request;
  std::vector<int32_t> tokens;  // prompt then generated
  int64_t num_computed = 0;     // tokens whose K,V are in the cache (or in `swapped`)
  SeqState state = SeqState::Waiting;
  kv::SeqId kv;                  // valid while running
  std::vector<uint8_t> swapped;  // the exported cache while swapped out
  bool admitted_once = false;
  // Request::start_kv, once accepted: the prompt tokens it holds and the
  // slots it takes per layer (0: none, or not usable).
  int64_t start_kv_tokens = 0, start_kv_slots = 0;
  bool later_turn = false;  // a turn of a program seen before (its prompt work counts as recomputed)
  Sampler sampler;
  StopMatcher stops;
  Tokenizer::StreamDecoder decoder;
  std::shared_ptr<TokenStream> stream;
  RequestStats stats;
  Clock::time_point submitted;
  std::optional<Clock::time_point> last_token_at;
};

}  // namespace mnemo::engine
