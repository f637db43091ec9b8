#pragma once
// SessionApi's per-connection state and the sink that streams one response
// (all its turns, with server_tools) to its connection. Private to
// session_api.cc and session_tools.cc.
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "daemon/app/continuum.h"
#include "daemon/app/event_gate.h"
#include "daemon/app/server_tools.h"
#include "daemon/app/records.h"
#include "daemon/app/scope_exit.h"
#include "daemon/app/session_api.h"
#include "daemon/app/storage_errors.h"

namespace mnemo::daemon::app {

using protocol::ErrorCode;

struct SessionApi::Connection {
  std::shared_ptr<net::WsConnection> ws;
  std::shared_ptr<SerialQueue> queue;
};

inline protocol::FinishReason finish_reason_of(const std::string& r) {
  if (r == "stop") return protocol::FinishReason::Stop;
  if (r == "length") return protocol::FinishReason::Length;
  if (r == "tool_calls") return protocol::FinishReason::ToolCalls;
  if (r == "cancelled") return protocol::FinishReason::Cancelled;
  if (r == "shutdown") return protocol::FinishReason::Shutdown;
  return protocol::FinishReason::Error;
}

// Streams one response to its connection and stores its messages. With
// server_tools a response is several turns: a turn whose calls the daemon
// runs hands over to SessionApi::run_tool_round instead of ending.
class SessionApi::Sink : public ResponseSink, public std::enable_shared_from_this<SessionApi::Sink> {
 public:
  Sink(SessionApi& api, std::shared_ptr<Connection> c, std::string response_id, std::string session_id,
       std::optional<std::string> event_id, std::shared_ptr<ToolLoop> loop)
      : api_(api), c_(std::move(c)), response_id_(std::move(response_id)), session_id_(std::move(session_id)),
        event_id_(std::move(event_id)), loop_(std::move(loop)) {}

  void on_delta(const std::string& text) override {
    run([=, this] { api_.send(*c_, protocol::ResponseDelta{response_id_, text}); });
  }
  void on_tool_call(const engine::ToolCall& call) override {
    run([=, this] { api_.send(*c_, protocol::ResponseToolCall{response_id_, to_protocol(call)}); });
  }
  void on_done(const ResponseOutcome& o) override {
    run([=, this] { done(o); });
  }
  // Events wait until the request is accepted, so response.created comes first.
  void open(const std::function<void()>& first) { gate_.open(first); }
  // usage.memory of its response.done: the compressed history it started from.
  void set_memory_usage(protocol::Json usage) { memory_usage_ = std::move(usage); }

  // Ends the response without a new message (the turn's message, if any, is
  // already stored): after a tool round that stops for the client, was
  // cancelled, or could not go on.
  void end(protocol::FinishReason reason, protocol::Message message, std::optional<protocol::ErrorBody> error = {}) {
    ScopeExit release([this] { api_.finish_response(response_id_); });
    protocol::ResponseDone done;
    done.event_id = event_id_;
    done.response_id = response_id_;
    done.session_id = session_id_;
    done.finish_reason = reason;
    done.message = std::move(message);
    done.error = std::move(error);
    close_loop(done);
    release.run();
    spdlog::info("response {} on {}: {} after {} tool rounds", response_id_, session_id_,
                 protocol::to_string(done.finish_reason), done.tool_turns);
    api_.send(*c_, done);
  }

  const std::string& response_id() const { return response_id_; }
  const std::string& session_id() const { return session_id_; }
  Connection& connection() { return *c_; }

 private:
  void run(std::function<void()> f) { gate_.run(std::move(f)); }

  // Every response ends with response.done and frees its session, whatever
  // fails on the way: a store that cannot save the message turns the
  // outcome into finish_reason "error" saying so.
  void done(const ResponseOutcome& o) {
    // Freed before response.done goes out, so the client's next event is
    // not refused busy; on an exception path, freed all the same.
    ScopeExit release([this] { api_.finish_response(response_id_); });
    protocol::ResponseDone done;
    done.event_id = event_id_;
    done.response_id = response_id_;
    done.session_id = session_id_;
    bool stored = false;
    try {
      finish(done, o);
      stored = true;
    } catch (const store::StorageFailure& e) {
      spdlog::error("response {} on {}: not stored: {}", response_id_, session_id_, e.what());
      fail(done, error_code_for(e), storage_message(e, "the response was not saved"));
    } catch (const std::exception& e) {
      spdlog::error("response {} on {}: not stored: {}", response_id_, session_id_, e.what());
      fail(done, ErrorCode::Internal, std::string("the response was not saved: ") + e.what());
    }
    api_.metrics_.record(o);
    if (stored && next_round(done)) {
      release.dismiss();
      return;
    }
    close_loop(done);
    release.run();
    spdlog::info("response {} on {}: {}{} ({} prompt tokens, {} cached, {} generated)", response_id_, session_id_,
                 protocol::to_string(done.finish_reason),
                 done.error ? " (" + std::string(protocol::to_string(done.error->code)) + ")" : std::string(),
                 o.prompt_tokens, o.cached_tokens, o.completion_tokens);
    api_.send(*c_, done);
  }

  // A stored turn whose calls include the daemon's tools goes on to a tool
  // round, within max_tool_turns, unless the response is being stopped.
  bool next_round(const protocol::ResponseDone& done) {
    if (!loop_ || done.finish_reason != protocol::FinishReason::ToolCalls || !done.message.index) return false;
    bool server_call = false;
    for (const auto& c : done.message.tool_calls)
      server_call = server_call || loop_->server_tools.count(c.name);
    if (!server_call) return false;
    if (loop_->stop.stop_requested() || api_.stopping_) return false;
    if (loop_->turns >= loop_->max_turns) {
      spdlog::info("response {} on {}: max_tool_turns ({}) reached: the model's last calls are left to the client",
                   response_id_, session_id_, loop_->max_turns);
      return false;
    }
    loop_->usage.prompt_tokens += done.usage.prompt_tokens;
    loop_->usage.cached_tokens += done.usage.cached_tokens;
    loop_->usage.completion_tokens += done.usage.completion_tokens;
    api_.tool_pool_->post([api = &api_, self = shared_from_this(), loop = loop_, calls = done.message.tool_calls,
                           message = done.message]() mutable {
      api->run_tool_round(std::move(self), std::move(loop), std::move(calls), std::move(message));
    });
    return true;
  }

  // The response's totals; the program begun for it ends with it.
  void close_loop(protocol::ResponseDone& done) {
    if (!loop_) return;
    done.usage.prompt_tokens += loop_->usage.prompt_tokens;
    done.usage.cached_tokens += loop_->usage.cached_tokens;
    done.usage.completion_tokens += loop_->usage.completion_tokens;
    loop_->usage = {};
    done.tool_turns = loop_->turns;
    api_.end_loop_program(*loop_);
  }

  static void fail(protocol::ResponseDone& done, ErrorCode code, std::string message) {
    done.finish_reason = protocol::FinishReason::Error;
    done.message.index.reset();  // not in the history
    done.error = protocol::ErrorBody{code, std::move(message)};
  }

  // The final message from the outcome, stored when its finish_reason keeps it.
  void finish(protocol::ResponseDone& done, const ResponseOutcome& o) {
    done.finish_reason = finish_reason_of(o.finish_reason);
    done.message.role = protocol::Role::Assistant;
    done.message.content = o.content;
    for (const auto& c : o.tool_calls) done.message.tool_calls.push_back(to_protocol(c));
    done.message.created_at = now_ms();
    done.usage = {o.prompt_tokens, o.cached_tokens, o.completion_tokens, memory_usage_};
    if (done.finish_reason == protocol::FinishReason::Error)
      done.error = protocol::ErrorBody{ErrorCode::Internal, o.error};
    if (protocol::stores_message(done.finish_reason)) {
      try {
        store::MessageRecord rec = to_record(done.message);
        rec.usage = {{"prompt_tokens", o.prompt_tokens},
                     {"cached_tokens", o.cached_tokens},
                     {"completion_tokens", o.completion_tokens}};
        done.message.index = api_.store_.append_message(session_id_, rec) - 1;
      } catch (const store::NotFound&) {
        // The session was deleted while the response ran: nothing to keep.
      }
    }
  }

  SessionApi& api_;
  std::shared_ptr<Connection> c_;
  std::string response_id_, session_id_;
  std::optional<std::string> event_id_;
  std::shared_ptr<ToolLoop> loop_;
  EventGate gate_;
  protocol::Json memory_usage_;
};

}  // namespace mnemo::daemon::app
