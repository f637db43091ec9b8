#pragma once
// OpenAI's legacy POST /v1/completions: a raw prompt (text, or token ids)
// continued without a chat template, as benchmarks and older clients use
// it. n choices, streaming, echo, logprobs (the legacy integer form),
// penalties and logit_bias; one prompt per request.
#include <memory>
#include <string>

#include "daemon/app/app_metrics.h"
#include "daemon/app/responder.h"
#include "daemon/app/worker_pool.h"
#include "daemon/net/handlers.h"

namespace mnemo::daemon::app {

class CompletionsApi {
 public:
  CompletionsApi(std::string model_name, const engine::Tokenizer& tok, Responder& responder, WorkerPool& pool,
                 AppMetrics& metrics);
  void handle(const net::HttpRequest& request, std::shared_ptr<net::HttpExchange> exchange);

 private:
  class Answer;
  void complete(const net::HttpRequest& request, std::shared_ptr<net::HttpExchange> exchange);

  std::string model_name_;
  const engine::Tokenizer& tok_;
  Responder& responder_;
  WorkerPool& pool_;
  AppMetrics& metrics_;
};

}  // namespace mnemo::daemon::app
