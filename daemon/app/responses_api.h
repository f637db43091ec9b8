#pragma once
// OpenAI's Responses API over HTTP: POST /v1/responses (plain or SSE),
// GET /v1/responses/{id}, DELETE /v1/responses/{id},
// GET /v1/responses/{id}/input_items. A chain of stored responses
// (previous_response_id) is a Mnemo session: its messages are the chain's
// items, so it survives restarts and its next turn reuses the chain's KV
// (prefix cache, and Continuum when a function call ends a turn).
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/app/app_metrics.h"
#include "daemon/app/responder.h"
#include "daemon/app/worker_pool.h"
#include "daemon/net/handlers.h"
#include "daemon/protocol/json.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::app {

struct ResponsesRequest;

// Where one response's events go: SSE on an HTTP exchange, or messages on a
// WebSocket (the Responses API's WebSocket mode).
class ResponseEvents {
 public:
  virtual ~ResponseEvents() = default;
  virtual bool streaming() const = 0;
  virtual void begin() = 0;  // before the first event
  virtual void event(const std::string& type, const protocol::Json& e) = 0;
  virtual void end() = 0;  // after the last event
  // The whole answer when not streaming, or an error before any event.
  virtual void respond(int status, const protocol::Json& body) = 0;
};

class ResponsesApi {
 public:
  ResponsesApi(std::string model_name, store::Store& store, Responder& responder, WorkerPool& pool,
               AppMetrics& metrics);
  // Any path under /v1/responses.
  void handle(const net::HttpRequest& request, std::shared_ptr<net::HttpExchange> exchange);
  void stop_accepting() { stopping_ = true; }
  // --max-sessions: a stored response that would start a new chain beyond it is refused.
  void set_max_sessions(int64_t n) { max_sessions_ = n; }
  bool stopping() const { return stopping_; }
  // Starts one response whose events go to `out`; returns its engine request
  // (to cancel it). Throws BadRequest, IntakeError, store errors.
  engine::RequestId start(ResponsesRequest r, std::shared_ptr<ResponseEvents> out);
  void cancel(engine::RequestId id) { responder_.cancel(id); }
  // The OpenAI error object, {"error": {...}}, for an exception start() threw.
  static std::pair<int, protocol::Json> error_body(const std::exception& e);

 private:
  class Sink;
  void create(const net::HttpRequest& request, std::shared_ptr<net::HttpExchange> exchange);
  void retrieve(const std::string& id, std::shared_ptr<net::HttpExchange> exchange);
  void remove(const std::string& id, std::shared_ptr<net::HttpExchange> exchange);
  void list_input_items(const std::string& id, const net::HttpRequest& request,
                        std::shared_ptr<net::HttpExchange> exchange);

  std::string model_name_;
  store::Store& store_;
  Responder& responder_;
  WorkerPool& pool_;
  AppMetrics& metrics_;
  std::atomic<bool> stopping_{false};
  int64_t max_sessions_ = INT64_MAX;
};

}  // namespace mnemo::daemon::app
