#pragma once
// One POST /v1/chat/completions answer: its n choices accumulated into one
// chat.completion (plain) or streamed as chat.completion.chunk events (SSE),
// each choice's chunks carrying its index and, when asked for, the logprobs
// of the tokens whose text they deliver.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/app/event_gate.h"
#include "daemon/app/http_api.h"

namespace mnemo::daemon::app {

class HttpApi::Sink : public std::enable_shared_from_this<HttpApi::Sink> {
 public:
  // turn and program_id: Continuum's records of the request, ended with it.
  Sink(HttpApi& api, std::shared_ptr<net::HttpExchange> ex, const ChatCompletionRequest& r,
       std::optional<int64_t> turn, std::string program_id);

  // The sinks Responder::start takes, one per choice, in index order.
  std::vector<std::shared_ptr<ResponseSink>> choices();
  // Once the request is accepted: the stream's head, then what waited.
  void open();

 private:
  class Choice;
  struct State {
    nlohmann::ordered_json logprobs = nlohmann::ordered_json::array();  // not yet sent (stream) or all (plain)
    int calls = 0;
    std::optional<ResponseOutcome> outcome;
  };

  void on_delta(size_t i, const std::string& text);
  void on_tool_call(size_t i, const engine::ToolCall& call);
  void on_logprob(size_t i, const GeneratedLogprob& lp);
  void on_done(size_t i, const ResponseOutcome& o);
  void finish();  // every choice is done
  void fail(const std::string& error);

  nlohmann::ordered_json base() const;
  // A chunk of choice i, with the logprobs it delivers (and clears).
  nlohmann::ordered_json chunk(size_t i, nlohmann::ordered_json delta, const nlohmann::ordered_json& finish);
  nlohmann::ordered_json logprobs_json(nlohmann::ordered_json& entries) const;
  nlohmann::ordered_json message(const ResponseOutcome& o) const;
  std::string finish_reason(const ResponseOutcome& o) const;

  HttpApi& api_;
  std::shared_ptr<net::HttpExchange> ex_;
  bool stream_, include_usage_, logprobs_, legacy_;
  std::string model_, id_;
  int64_t created_ = 0;
  std::optional<int64_t> turn_;
  std::string program_id_;
  bool last_step_;
  std::vector<State> choices_;
  size_t done_ = 0;
  bool failed_ = false;  // a streamed choice failed: the stream has ended
  EventGate gate_;  // also serializes the choices' callbacks, which come from different workers
};

}  // namespace mnemo::daemon::app
