#pragma once
// OpenAI's POST /v1/embeddings, answered by the served model itself: an
// input's embedding is the mean over its tokens of the residual stream after
// a chosen layer (engine/model/hidden_states.h), L2-normalised to unit length
// as OpenAI's embeddings are (cosine similarity = dot product).
//
// Inputs: a string, an array of strings, an array of token ids or an array
// of arrays of token ids; strings are encoded without special tokens and
// without matching special-token text (a client's text never becomes a
// control token). encoding_format float or base64 (little-endian float32);
// dimensions only as the native size. Bounded: inputs per request, tokens
// per input, tokens per request, embedding requests queued.
//
// The model runs on a worker thread, beside the engine's step loop: the
// Model is only read, mean_hidden_state keeps its buffers local (the kernels'
// scratch is thread_local) and the worker runs its own OpenMP team. Requests
// are computed one at a time (a serial queue), so at most one extra team
// competes with the engine for the cores and one input's cache is alive.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/app/app_metrics.h"
#include "daemon/app/worker_pool.h"
#include "daemon/net/handlers.h"
#include "engine/model/model.h"
#include "engine/tokenizer/tokenizer.h"

namespace mnemo::daemon::app {

struct EmbeddingsOptions {
  int64_t layer = 0;  // 1..num_layers; 0: the middle layer, (num_layers + 1) / 2
  int threads = 1;    // kernel threads of the computation (mnemod's --threads)
  int64_t max_inputs = 2048;            // OpenAI's bound on the input array
  int64_t max_input_tokens = 8192;      // per input, further bounded by the model's context
  int64_t max_total_tokens = 65536;     // per request: bounds the compute one request can ask for
  int64_t max_queued = 64;              // requests waiting for the model; more get 429
};

class EmbeddingsApi {
 public:
  // Throws std::invalid_argument when options.layer is outside 0..num_layers.
  EmbeddingsApi(std::string model_name, const engine::Model& model, const engine::Tokenizer& tok, WorkerPool& pool,
                AppMetrics& metrics, EmbeddingsOptions options);
  void handle(const net::HttpRequest& request, std::shared_ptr<net::HttpExchange> exchange);
  int64_t layer() const { return layer_; }

 private:
  struct Request;
  void parse_and_queue(const net::HttpRequest& request, std::shared_ptr<net::HttpExchange> exchange);
  void compute(const Request& r, const std::shared_ptr<net::HttpExchange>& exchange);

  std::string model_name_;
  const engine::Model& model_;
  const engine::Tokenizer& tok_;
  WorkerPool& pool_;
  AppMetrics& metrics_;
  EmbeddingsOptions opt_;
  int64_t layer_;
  std::shared_ptr<SerialQueue> queue_;
  std::atomic<int64_t> queued_{0};
};

}  // namespace mnemo::daemon::app
