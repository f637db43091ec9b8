#include "daemon/app/app_metrics.h"

#include "daemon/app/responder.h"

namespace mnemo::daemon::app {

namespace {
// Engine counters for the scrape; counters() takes the engine's lock briefly.
void add_engine_gauges(metrics::Registry& r, const engine::Engine& e) {
  auto gauge = [&](const char* name, const char* help, std::function<double(const engine::EngineCounters&)> f) {
    r.gauge(name, help).set_callback([&e, f] { return f(e.counters()); });
  };
  gauge("mnemo_kv_blocks_total", "KV cache blocks per layer", [](const auto& c) { return double(c.kv.blocks); });
  gauge("mnemo_kv_blocks_used", "KV cache blocks holding live sequences", [](const auto& c) { return double(c.kv.used); });
  gauge("mnemo_kv_blocks_cached", "free KV blocks whose content the prefix cache can reuse",
        [](const auto& c) { return double(c.kv.cached); });
  gauge("mnemo_kv_blocks_pinned", "KV blocks pinned by programs", [](const auto& c) { return double(c.kv.pinned); });
  gauge("mnemo_prefix_cache_hit_tokens", "prompt tokens reused from the prefix cache since start",
        [](const auto& c) { return double(c.scheduler.cached_tokens); });
  gauge("mnemo_preemptions", "sequences preempted since start", [](const auto& c) { return double(c.scheduler.preemptions); });
  gauge("mnemo_engine_running", "sequences running", [](const auto& c) { return double(c.running); });
  gauge("mnemo_engine_waiting", "sequences waiting", [](const auto& c) { return double(c.waiting); });
  gauge("mnemo_engine_steps", "engine steps since start", [](const auto& c) { return double(c.steps); });
  gauge("mnemo_engine_step_seconds_total", "time in engine steps since start",
        [](const auto& c) { return c.step_seconds; });
  gauge("mnemo_engine_forward_seconds_total", "time in the model's forward passes since start",
        [](const auto& c) { return c.forward_seconds; });
  gauge("mnemo_engine_schedule_seconds_total",
        "time in the scheduler since start (ordering, admission, preemption, deadlock guard; not host-tier copies)",
        [](const auto& c) { return c.schedule_seconds; });
  gauge("mnemo_engine_retention_policy_seconds_total", "time in KV retention bookkeeping between steps since start",
        [](const auto& c) { return c.retention_seconds; });
  // Agent programs' KV across tool calls (Continuum): what is parked now, and since start.
  gauge("mnemo_programs_parked", "programs whose KV is parked across a tool call",
        [](const auto& c) { return double(c.retention.parked); });
  gauge("mnemo_programs_parked_blocks", "KV blocks parked for programs in a tool call",
        [](const auto& c) { return double(c.retention.parked_blocks); });
  gauge("mnemo_retention_hits", "turns admitted onto their program's parked KV since start",
        [](const auto& c) { return double(c.retention.retained_hits); });
  gauge("mnemo_retention_expiries", "parked programs released when their TTL ran out since start",
        [](const auto& c) { return double(c.retention.expiries); });
  gauge("mnemo_retention_guard_releases", "parked programs released so a waiting request fits since start",
        [](const auto& c) { return double(c.retention.guard_releases); });
  gauge("mnemo_host_tier_bytes", "bytes of KV held in the host-memory tier",
        [](const auto& c) { return double(c.retention.tier_bytes); });
  gauge("mnemo_host_tier_puts", "programs' KV moved to the host tier since start",
        [](const auto& c) { return double(c.retention.tier_puts); });
  gauge("mnemo_host_tier_hits", "turns restored from the host tier since start",
        [](const auto& c) { return double(c.retention.tier_hits); });
  gauge("mnemo_host_tier_misses", "host-tier lookups that found nothing since start",
        [](const auto& c) { return double(c.retention.tier_misses); });
  gauge("mnemo_host_tier_copy_seconds_total", "time copying KV between the pool and the host tier since start",
        [](const auto& c) { return c.retention.tier_copy_seconds; });
  gauge("mnemo_host_tier_copy_bytes_total", "KV bytes copied between the pool and the host tier since start",
        [](const auto& c) { return double(c.retention.tier_copy_bytes); });
  gauge("mnemo_program_recomputed_tokens", "prompt tokens later turns of programs had to compute again since start",
        [](const auto& c) { return double(c.retention.recomputed_tokens); });
}
}  // namespace

AppMetrics::AppMetrics(const engine::Engine& engine)
    : requests(registry.counter_family("mnemo_requests_total", "requests by API", {"api"})),
      responses(registry.counter("mnemo_responses_total", "model responses finished")),
      prompt_tokens(registry.counter("mnemo_prompt_tokens_total", "prompt tokens of finished responses")),
      cached_tokens(registry.counter("mnemo_cached_tokens_total", "prompt tokens served from the prefix cache")),
      completion_tokens(registry.counter("mnemo_completion_tokens_total", "tokens generated")),
      errors(registry.counter("mnemo_errors_total", "requests answered with an error")),
      ws_connections(registry.gauge("mnemo_ws_connections", "open WebSocket connections")),
      ttft_seconds(registry.histogram("mnemo_time_to_first_token_seconds", "submit to first token",
                                      metrics::latency_buckets())),
      itl_seconds(registry.histogram("mnemo_inter_token_latency_seconds", "time between streamed tokens",
                                     metrics::latency_buckets())),
      ttl_seconds(registry.histogram("mnemo_ttl_seconds", "KV retention chosen for a program calling a tool",
                                     {0, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300})) {
  add_engine_gauges(registry, engine);
}

void AppMetrics::record(const ResponseOutcome& o) {
  responses.inc();
  prompt_tokens.inc(uint64_t(o.prompt_tokens));
  cached_tokens.inc(uint64_t(o.cached_tokens));
  completion_tokens.inc(uint64_t(o.completion_tokens));
  if (o.completion_tokens > 0) ttft_seconds.observe(o.stats.ttft_seconds);
  for (double s : o.stats.inter_token_seconds) itl_seconds.observe(s);
}

}  // namespace mnemo::daemon::app
