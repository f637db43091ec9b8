#pragma once
// Turns a conversation into an engine request and its token stream into
// what clients see: text deltas, parsed tool calls, and a final outcome with
// usage. Shared by the WebSocket session protocol and the OpenAI endpoint.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/app/generated_memory.h"
#include "daemon/app/response_spec.h"
#include "daemon/app/worker_pool.h"
#include "daemon/protocol/sampling.h"
#include "engine/constrain/token_trie.h"
#include "engine/serving/engine.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/prompt_encoder.h"
#include "engine/tokenizer/tool_call_parser.h"

namespace mnemo::daemon::app {

struct ResponseOutcome {
  std::string content;                      // text outside tool calls
  std::vector<engine::ToolCall> tool_calls;  // arguments as JSON text
  std::string finish_reason;  // stop, length, tool_calls, cancelled, shutdown, error
  std::string error;          // finish_reason "error"
  int64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  engine::RequestStats stats;
};

// A token's log-probability as clients see it (OpenAI's logprobs).
struct TokenProb {
  std::string bytes;  // the token's raw bytes: may be part of a UTF-8 character
  float logprob = 0;  // natural log; -inf: the token could not be drawn
};
struct GeneratedLogprob {
  TokenProb chosen;
  std::vector<TokenProb> top;  // best first, as many as top_logprobs asked
};

// Callbacks of one response, called in order from one thread at a time.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  // With logprobs asked for: every generated token's (tool-call tokens
  // too), before the text it completes reaches on_delta or on_tool_call.
  // A stop token ends the response without being generated: none for it.
  virtual void on_logprob(const GeneratedLogprob&) {}
  virtual void on_delta(const std::string& text) = 0;
  virtual void on_tool_call(const engine::ToolCall& call) = 0;
  virtual void on_done(const ResponseOutcome& outcome) = 0;
};

class Continuum;

// The n choices of one request (chat completions' n), as Responder::start
// submits them. cancel() ends those running and those not yet submitted.
class ChoiceGroup {
 public:
  explicit ChoiceGroup(engine::Engine& engine) : engine_(engine) {}
  void cancel();

 private:
  friend class Responder;
  // Submits one choice's request unless cancelled, then cancels it at once.
  engine::RequestHandle submit(engine::Request req);

  engine::Engine& engine_;
  std::mutex mu_;
  bool cancelled_ = false;
  std::vector<engine::RequestId> ids_;
};

class Responder {
 public:
  // continuum (optional): places each response in its agent program and
  // decides what happens to its KV when it ends calling a tool.
  Responder(engine::Engine& engine, const engine::Model& model, const engine::Tokenizer& tok,
            engine::ChatTemplate tmpl, WorkerPool& pool, Continuum* continuum = nullptr);

  // Renders and submits; the sink hears the rest. Throws BadRequest for a
  // conversation, tools or sampling that cannot be served.
  // start_kv (optional): a KV snapshot of a prefix of the prompt to start
  // from (a session's compressed history; engine::Request::start_kv);
  // kv_saved: how many fewer KV slots than tokens it holds, so the room to
  // generate is counted against what the KV cache will really hold.
  engine::RequestId start(const ResponseSpec& spec, std::shared_ptr<ResponseSink> sink,
                          std::shared_ptr<const std::vector<uint8_t>> start_kv = nullptr, int64_t kv_saved = 0);
  // One choice per sink, independent samples of one prompt, rendered once.
  // The first is submitted now, the others once its prompt has been
  // computed, so they find it in the prefix cache and compute none of it
  // (submitted together, each would compute it: blocks are shared once
  // written). With a seed, choice i samples with seed + i. Only the first
  // takes part in the agent program (Continuum).
  std::shared_ptr<ChoiceGroup> start(const ResponseSpec& spec, std::vector<std::shared_ptr<ResponseSink>> sinks);
  // Prefills the conversation into the prefix cache without generating, so
  // the next response on it starts from cached blocks.
  void warm(const ResponseSpec& spec);
  // The response ends with finish_reason "cancelled" (unless already done).
  void cancel(engine::RequestId id);
  // The prompt's token ids, as start() submits them. Text from clients and
  // tools never becomes a special token (engine::PromptEncoder): a user or a
  // tool result writing "<|eot_id|>" cannot end the turn or forge a role.
  // Throws BadRequest when the rendered text is longer than the model's
  // positions could hold at kMaxBytesPerToken, before tokenizing it (not the
  // KV cache: a compressed history holds fewer slots than tokens).
  std::vector<int32_t> prompt(const ResponseSpec& spec) const;
  // No tokenizer we serve averages more bytes per token; a longer rendering
  // cannot fit the context, and tokenizing it would only cost time.
  static constexpr int64_t kMaxBytesPerToken = 32;
  const GeneratedMemory& generated_memory() const { return generated_; }
  bool supports_tools() const { return syntax_.has_value(); }
  const std::string& family() const { return family_; }

 private:
  struct Running;
  // A request ready to submit but for its constraint (one per choice).
  struct Prepared {
    engine::Request request;
    bool tools = false;
  };
  Prepared prepare(const ResponseSpec& spec, int64_t kv_saved = 0) const;
  std::unique_ptr<engine::LogitsConstraint> constraint(const ResponseSpec& spec, bool tools) const;
  // Submits one choice; choice 0 alone joins the agent program.
  std::shared_ptr<Running> launch(const ResponseSpec& spec, engine::Request req, bool tools,
                                  std::shared_ptr<ResponseSink> sink, ChoiceGroup* group, size_t choice,
                                  std::function<void()> on_first_event = nullptr);
  engine::SamplingParams sampling_params(const ResponseSpec& spec) const;
  void drain(const std::shared_ptr<Running>& r);
  GeneratedLogprob logprob(const engine::TokenLogprobs& lp) const;
  // The constraint of a response format: the JSON answer alone, or, with
  // tools under tool_choice auto, either one tool call or the answer.
  std::unique_ptr<engine::LogitsConstraint> answer_constraint(const ResponseSpec& spec, bool tools) const;

  engine::Engine& engine_;
  const engine::Model& model_;
  const engine::Tokenizer& tok_;
  engine::ChatTemplate tmpl_;
  engine::PromptEncoder encoder_;
  std::string family_;
  std::optional<engine::ToolCallSyntax> syntax_;
  std::vector<int32_t> stop_ids_;
  std::shared_ptr<const engine::TokenTrie> vocab_;
  WorkerPool& pool_;
  Continuum* continuum_;
  // What recent assistant messages were generated as: prompts give them back
  // verbatim, so a program's next turn finds its whole previous KV.
  mutable GeneratedMemory generated_;
  std::mutex mu_;
  // Alive until their Done: the stream callbacks only hold weak references.
  std::unordered_map<engine::RequestId, std::shared_ptr<Running>> running_;
};

}  // namespace mnemo::daemon::app
