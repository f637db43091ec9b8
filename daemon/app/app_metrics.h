#pragma once
// mnemod's metrics, registered once at startup, exported at GET /metrics.
#include "daemon/metrics/registry.h"
#include "engine/serving/engine.h"

namespace mnemo::daemon::app {

struct ResponseOutcome;

struct AppMetrics {
  explicit AppMetrics(const engine::Engine& engine);
  // Counts a finished response: tokens, time to first token, inter-token gaps.
  void record(const ResponseOutcome& o);

  metrics::Registry registry;
  metrics::Family<metrics::Counter>& requests;  // label api: ws_event, chat_completions, ...
  metrics::Counter& responses;
  metrics::Counter& prompt_tokens;
  metrics::Counter& cached_tokens;  // prompt tokens served from the prefix cache
  metrics::Counter& completion_tokens;
  metrics::Counter& errors;
  metrics::Gauge& ws_connections;
  metrics::Histogram& ttft_seconds;
  metrics::Histogram& itl_seconds;
  metrics::Histogram& ttl_seconds;  // KV retention chosen at the end of a turn calling a tool
};

}  // namespace mnemo::daemon::app
