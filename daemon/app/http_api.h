#pragma once
// mnemod's HTTP routes: the OpenAI-compatible POST /v1/chat/completions
// (plain or SSE), GET /v1/models, GET /healthz and GET /metrics.
#include <atomic>
#include <string>

#include "daemon/app/app_metrics.h"
#include "daemon/app/chat_completions.h"
#include "daemon/app/responder.h"
#include "daemon/app/worker_pool.h"
#include "daemon/net/handlers.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::app {

class ServerTools;
class ResponsesApi;
class CompletionsApi;
class EmbeddingsApi;

class HttpApi : public net::HttpHandler {
 public:
  HttpApi(std::string model_name, store::Store& store, Responder& responder, WorkerPool& pool, AppMetrics& metrics);
  void handle(const net::HttpRequest& request, std::shared_ptr<net::HttpExchange> exchange) override;
  void stop_accepting() { stopping_ = true; }
  // GET /v1/tools lists these (the --tools file's); none when never set.
  void set_tools(const ServerTools* tools) { tools_ = tools; }
  // /v1/responses and below go to the Responses API.
  void set_responses(ResponsesApi* responses) { responses_ = responses; }
  void set_completions(CompletionsApi* completions) { completions_ = completions; }
  void set_embeddings(EmbeddingsApi* embeddings) { embeddings_ = embeddings; }

 private:
  class Sink;
  void chat_completions(const net::HttpRequest& request, std::shared_ptr<net::HttpExchange> exchange);
  std::optional<int64_t> record_turn(const ProgramInfo& p, std::string& program_id);

  std::string model_name_;
  store::Store& store_;
  Responder& responder_;
  WorkerPool& pool_;
  AppMetrics& metrics_;
  std::atomic<bool> stopping_{false};
  int64_t started_ = 0;
  const ServerTools* tools_ = nullptr;
  ResponsesApi* responses_ = nullptr;
  CompletionsApi* completions_ = nullptr;
  EmbeddingsApi* embeddings_ = nullptr;
};

}  // namespace mnemo::daemon::app
