#include "daemon/app/continuum.h"

#include <spdlog/spdlog.h>

#include "daemon/app/records.h"
#include "daemon/app/responder.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::app {

namespace {

using memory::ttl::RetentionMode;

// Continuum's this_func_call: a tool name, or a JSON call with a "name".
std::string tool_name_of(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object() && j.contains("name") && j["name"].is_string()) return j["name"].get<std::string>();
  if (j.is_string()) return j.get<std::string>();
  return text;
}

bool served(const std::string& finish_reason) {
  return finish_reason == "stop" || finish_reason == "length" || finish_reason == "tool_calls";
}

}  // namespace

Continuum::Continuum(ContinuumOptions opt, engine::Engine& engine, store::Store* store, AppMetrics& metrics)
    : opt_(opt),
      engine_(engine),
      store_(store),
      policy_(opt.mode),
      tracker_(opt.tracker),
      ttl_seconds_(metrics.ttl_seconds) {
  auto& r = metrics.registry;
  r.gauge("mnemo_ttl_tool_samples", "tool durations the TTL policy knows (loaded from the store and recorded since)")
      .set_callback([this] { return double(policy_.tools().total()); });
  r.gauge("mnemo_ttl_tools", "distinct tools with recorded durations").set_callback([this] {
    return double(policy_.tools().tools());
  });
  r.gauge("mnemo_ttl_programs_finished", "finished programs behind the eta statistic").set_callback([this] {
    return double(policy_.eta().programs());
  });
  r.gauge("mnemo_ttl_eta", "Continuum's eta = -Corr(k, N-k) over finished programs").set_callback([this] {
    return policy_.eta().eta();
  });
  r.gauge("mnemo_ttl_queue_delay_seconds", "T: mean queueing delay of turns whose KV had been evicted")
      .set_callback([this] { return policy_.queue_delay().mean(); });
  r.gauge("mnemo_ttl_policy_seconds_total",
          "time placing responses in programs and choosing TTLs since start (worker threads, not the engine's)")
      .set_callback([this] { return double(policy_ns_.load()) * 1e-9; });
  r.gauge("mnemo_reload_seconds_saved_total",
          "prefill seconds (the engine's own fit) later turns did not spend because their previous turn's KV was "
          "still there, kept, cached or restored, since start")
      .set_callback([this] { return double(saved_us_.load()) * 1e-6; });
  r.gauge("mnemo_programs_tracked", "agent programs the daemon is following").set_callback([this] {
    return double(tracker_.programs());
  });
  r.gauge("mnemo_programs_inferred_waiting", "inferred programs waiting for their next turn (tool running)")
      .set_callback([this] { return double(tracker_.inferred()); });
  load();
  saver_ = std::thread([this] { saver_loop(); });
}

Continuum::~Continuum() {
  {
    std::lock_guard lock(save_mu_);
    stopping_ = true;
  }
  save_cv_.notify_all();
  saver_.join();
  save();
}

void Continuum::load() {
  if (!store_) return;
  try {
    auto saved = store_->get_policy_state(kStateName);
    if (!saved) {
      spdlog::info("TTL policy: no saved statistics, cold start ({} samples before the CDF is used)",
                   policy_.cold_start_samples());
      return;
    }
    policy_.load(nlohmann::json::parse(saved->dump()));
    spdlog::info("TTL policy: statistics loaded from the store: {} tool durations over {} tools, {} finished "
                 "programs (eta {:.3f})",
                 policy_.tools().total(), policy_.tools().tools(), policy_.eta().programs(), policy_.eta().eta());
  } catch (const std::exception& e) {
    // Learned statistics are worth keeping, not worth refusing to serve.
    spdlog::warn("TTL policy: saved statistics unreadable ({}): cold start", e.what());
  }
}

void Continuum::save() {
  {
    std::lock_guard lock(save_mu_);
    if (!dirty_) return;
    dirty_ = false;
  }
  if (!store_) return;
  try {
    store_->put_policy_state(kStateName, nlohmann::ordered_json::parse(policy_.to_json().dump()), now_ms());
    spdlog::debug("TTL policy: statistics saved ({} tool durations, {} programs)", policy_.tools().total(),
                  policy_.eta().programs());
  } catch (const std::exception& e) {
    // A full disk: the next change tries again.
    spdlog::warn("TTL policy: statistics not saved: {}", e.what());
  }
}

void Continuum::mark_dirty() {
  {
    std::lock_guard lock(save_mu_);
    dirty_ = true;
  }
  save_cv_.notify_all();
}

void Continuum::saver_loop() {
  // Debounced: a change is written at most save_interval after it, and
  // writes are at most one per interval however busy the daemon is.
  const auto interval = std::chrono::duration<double>(opt_.save_interval_seconds);
  std::unique_lock lock(save_mu_);
  while (true) {
    save_cv_.wait(lock, [&] { return dirty_ || stopping_; });
    if (stopping_) return;
    if (save_cv_.wait_for(lock, interval, [&] { return stopping_; })) return;
    lock.unlock();
    save();
    lock.lock();
  }
}

namespace {
// Adds the scope's duration to a nanosecond counter.
struct Timed {
  std::atomic<int64_t>& into;
  Clock::time_point t0 = Clock::now();
  ~Timed() { into += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count(); }
};
}  // namespace

TurnStart Continuum::begin_turn(const ProgramRef& ref, std::span<const int32_t> prompt, uint64_t salt,
                                bool may_call_tools) {
  const Timed timed{policy_ns_};
  TurnStart t = tracker_.arrive(ref, prompt, salt, may_call_tools, Clock::now());
  if (t.turn > 0) {
    if (t.tool_seconds && !t.prev_tool.empty()) {
      policy_.tools().record(t.prev_tool, *t.tool_seconds);
      mark_dirty();
    }
    spdlog::debug("program {} turn {} arrived ({}{}): tool '{}' took {:.3f} s{}", t.program, t.turn,
                  to_string(t.source),
                  t.source == ProgramSource::Inferred ? ", extends " + std::to_string(t.matched_tokens) +
                                                            " tokens of its previous turn"
                                                      : std::string(),
                  t.prev_tool, t.tool_seconds.value_or(0), t.tool_seconds ? " (gap between turns)" : " (reported)");
  }
  return t;
}

double Continuum::reload_seconds(int64_t tokens, const char*& how) const {
  how = "prefill";
  const double prefill = reload_.predict(tokens);
  const int64_t bytes = tokens * opt_.kv_bytes_per_token;
  if (opt_.host_tier_bytes <= 0 || bytes <= 0 || bytes > opt_.host_tier_bytes) return prefill;
  // Until a copy has been timed, the prefill estimate stands.
  const engine::RetentionCounters c = engine_.counters().retention;
  if (c.tier_copy_seconds <= 0 || c.tier_copy_bytes < (int64_t(1) << 20)) return prefill;
  how = "host-tier copy";
  return double(bytes) * c.tier_copy_seconds / double(c.tier_copy_bytes);
}

engine::ProgramTurn Continuum::engine_turn(const TurnStart& t) const {
  engine::ProgramTurn p;
  // --kv-retention none: today's behaviour, every request on its own in the
  // LRU prefix cache (the statistics are still learned).
  if (t.program == 0 || opt_.mode.kind == RetentionMode::Kind::None) return p;
  p.id = t.program;
  p.arrival = t.program_arrival;
  p.hold_after = !t.last_step;
  return p;
}

void Continuum::end_turn(const TurnStart& t, const ResponseOutcome& o, const ProgramRef& ref,
                         std::span<const int32_t> prompt, std::span<const int32_t> generated) {
  const Timed timed{policy_ns_};
  try {
    const engine::RequestStats& st = o.stats;
    // Prefill speed for Reload(r): the prompt tokens this response computed
    // (restored ones count as cached) against submit-to-first-token less the
    // queueing.
    const int64_t computed = o.prompt_tokens - o.cached_tokens;
    const double prefill = st.ttft_seconds - st.queue_seconds;
    if (computed > 0 && prefill > 0 && o.completion_tokens > 0) reload_.add(computed, prefill);
    if (t.program == 0) return;

    // T: a later turn that found less than its previous turn's KV had been
    // evicted, and what it waited in the queue is what a pin would have saved.
    const bool evicted =
        t.turn > 0 && t.prev_kv_tokens > 0 && o.cached_tokens < t.prev_kv_tokens && served(o.finish_reason);
    if (evicted) {
      policy_.queue_delay().add(st.queue_seconds);
      spdlog::info("program {} turn {}: {} of its previous turn's {} tokens were still cached ({} restored from the "
                   "host tier); it waited {:.3f} s in the queue (T now {:.3f} s)",
                   t.program, t.turn, o.cached_tokens, t.prev_kv_tokens, st.restored_tokens, st.queue_seconds,
                   policy_.queue_delay().mean());
    } else if (t.turn > 0) {
      spdlog::debug("program {} turn {}: {} prompt tokens cached of {} kept by its previous turn ({} restored)",
                    t.program, t.turn, o.cached_tokens, t.prev_kv_tokens, st.restored_tokens);
    }

    if (t.turn > 0 && t.prev_kv_tokens > 0 && o.cached_tokens > 0)
      saved_us_ += int64_t(1e6 * reload_.predict(std::min<int64_t>(o.cached_tokens, t.prev_kv_tokens)));

    const bool held = engine_turn(t).hold_after;
    std::string tool;
    if (!o.tool_calls.empty()) tool = o.tool_calls.front().name;
    else if (ref.this_func_call) tool = tool_name_of(*ref.this_func_call);
    // Continuum's clients say a tool follows (this_func_call) even when the
    // model's text is not a parsed call.
    const bool called = served(o.finish_reason) && !t.last_step &&
                        (o.finish_reason == "tool_calls" || (t.source == ProgramSource::Explicit && !tool.empty()));
    double tau = 0;
    if (called) {
      const int64_t tokens = o.prompt_tokens + o.completion_tokens;
      const char* how = "";
      const double reload = reload_seconds(tokens, how);
      const memory::ttl::TtlDecision d = policy_.decide(tool, reload);
      tau = d.seconds;
      if (held) {
        engine_.retain(t.program, tau);
        ttl_seconds_.observe(tau);
      }
      if (!held)
        spdlog::info("program {} turn {} ended calling '{}': KV not kept (--kv-retention {})", t.program, t.turn, tool,
                     opt_.mode.to_string());
      else if (tau > 0)
        spdlog::info("program {} turn {} ended calling '{}': KV of {} tokens kept for {:.3f} s ({}; reload {:.3f} s by "
                     "{})",
                     t.program, t.turn, tool, tokens, tau, d.reason, reload, how);
      else
        spdlog::info("program {} turn {} ended calling '{}': KV not kept: {} (reload {:.3f} s by {})", t.program,
                     t.turn, tool, d.reason, reload, how);
    } else if (held) {
      engine_.retain(t.program, 0);
    }

    const TurnEnd e = tracker_.finish(t, called, tool, prompt, generated, tau, Clock::now());
    if (e.program_ended) {
      if (served(o.finish_reason)) program_finished(t.program, e.turns, t.last_step ? "last step" : "no tool call");
      else spdlog::debug("program {} dropped: its turn {} ended {}", t.program, t.turn, o.finish_reason);
    }
  } catch (const std::exception& e) {
    // Bookkeeping must never cost a client its response.
    spdlog::error("program {} turn {}: retention bookkeeping failed: {}", t.program, t.turn, e.what());
    try {
      engine_.retain(t.program, 0);
    } catch (...) {
    }
  }
}

void Continuum::program_finished(uint64_t program, int turns, const char* how) {
  policy_.eta().add_program(turns);
  mark_dirty();
  spdlog::info("program {} ended after {} turns ({}); eta {:.3f} over {} programs", program, turns, how,
               policy_.eta().eta(), policy_.eta().programs());
}

void Continuum::program_begun(const std::string& key) { tracker_.begin(key, Clock::now()); }

void Continuum::program_ended(const std::string& key) {
  const auto ended = tracker_.end(key);
  if (!ended) return;
  if (opt_.mode.kind != RetentionMode::Kind::None) engine_.retain(ended->first, 0);
  program_finished(ended->first, ended->second, "program.end");
}

void Continuum::tool_started(const std::string& call_id, const std::string& name, const std::string& program_key) {
  tracker_.tool_started(call_id, name, program_key, Clock::now());
}

void Continuum::tool_ended(const std::string& call_id, bool by_daemon) {
  const auto timing = tracker_.tool_ended(call_id, Clock::now());
  if (!timing) return;
  policy_.tools().record(timing->name, timing->seconds);
  mark_dirty();
  spdlog::debug("tool '{}' (call {}) took {:.3f} s, {}", timing->name, call_id, timing->seconds,
                by_daemon ? "run by mnemod" : "reported by the client");
}

}  // namespace mnemo::daemon::app
