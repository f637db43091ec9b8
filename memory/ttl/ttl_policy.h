#pragma once

#include <cstddef>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "memory/ttl/eta_stats.h"
#include "memory/ttl/retention_mode.h"
#include "memory/ttl/sliding_mean.h"
#include "memory/ttl/tool_stats.h"

namespace mnemo::memory::ttl {

struct TtlDecision {
  double seconds = 0;
  // Why, with the numbers, for logs: "cold start ln(B), B=3.2 s (T=1.2 s,
  // reload=2 s, 40 < 100 samples)", "global CDF of 240 samples ...",
  // "tool 'search' CDF of 130 samples ...".
  std::string reason;
};

// Continuum's full model with its cold start. All public methods are safe to
// call concurrently from worker threads; so are the statistics objects that
// tools(), eta() and queue_delay() return (each is internally locked).
class TtlPolicy {
 public:
  explicit TtlPolicy(RetentionMode mode, size_t cold_start_samples = 100);

  // How long to keep a program's KV after a turn that ended calling `tool`;
  // reload_seconds = what it costs to get that KV back if dropped.
  // None -> 0; Fixed -> fixed_seconds; Continuum -> while tools().total() < K:
  // ln(B) with B = T + reload if B > 1, else 0; then solve_tau over the global
  // samples; once `tool` has more than K samples, over its own.
  TtlDecision decide(const std::string& tool, double reload_seconds) const;

  ToolStats& tools();
  const ToolStats& tools() const;
  EtaStats& eta();
  const EtaStats& eta() const;
  SlidingMean& queue_delay();
  const SlidingMean& queue_delay() const;
  const RetentionMode& mode() const;
  size_t cold_start_samples() const;

  // {"tools": ToolStats, "eta": EtaStats}: what the daemon persists. load()
  // throws std::invalid_argument (nothing changed) on junk.
  nlohmann::json to_json() const;
  void load(const nlohmann::json& j);

 private:
  const RetentionMode mode_;
  const size_t cold_start_samples_;
  mutable std::mutex mu_;  // decide/to_json/load see tools and eta together
  ToolStats tools_;
  EtaStats eta_;
  SlidingMean queue_delay_;
};

}  // namespace mnemo::memory::ttl
