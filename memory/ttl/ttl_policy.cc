#include "memory/ttl/ttl_policy.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

#include "memory/ttl/ttl_solver.h"

namespace mnemo::memory::ttl {
namespace {

std::string num(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 4);
  (void)ec;
  return std::string(buf, end);
}

}  // namespace

TtlPolicy::TtlPolicy(RetentionMode mode, size_t cold_start_samples)
    : mode_(mode), cold_start_samples_(cold_start_samples) {}

TtlDecision TtlPolicy::decide(const std::string& tool, double reload_seconds) const {
  using Kind = RetentionMode::Kind;
  if (mode_.kind == Kind::None) return {0, "retention none"};
  if (mode_.kind == Kind::Fixed) return {mode_.fixed_seconds, "fixed " + num(mode_.fixed_seconds) + " s"};

  const double reload = std::isfinite(reload_seconds) && reload_seconds > 0 ? reload_seconds : 0;
  std::lock_guard lock(mu_);
  const double T = queue_delay_.mean();
  const double eta = eta_.eta();
  const size_t total = tools_.total();
  const std::string inputs = "T=" + num(T) + " s, eta=" + num(eta) + ", reload=" + num(reload) + " s";

  if (total < cold_start_samples_) {
    // Too few durations for a CDF: ln(B) is the optimum when durations are
    // Exp(1) and eta = 1, and it grows slowly with what is at stake.
    const double B = T + reload;
    const double tau = B > 1 ? std::log(B) : 0;
    return {tau, "cold start ln(B), B=" + num(B) + " s (" + inputs + ", " + std::to_string(total) + " < " +
                     std::to_string(cold_start_samples_) + " samples)"};
  }
  const size_t own = tools_.count(tool);
  if (own > cold_start_samples_) {
    const auto s = tools_.samples(tool);
    return {solve_tau(s, T, eta, reload),
            "tool '" + tool + "' CDF of " + std::to_string(s.size()) + " samples (" + inputs + ")"};
  }
  const auto s = tools_.global_samples();
  return {solve_tau(s, T, eta, reload),
          "global CDF of " + std::to_string(s.size()) + " samples (" + inputs + ")"};
}

ToolStats& TtlPolicy::tools() { return tools_; }
const ToolStats& TtlPolicy::tools() const { return tools_; }
EtaStats& TtlPolicy::eta() { return eta_; }
const EtaStats& TtlPolicy::eta() const { return eta_; }
SlidingMean& TtlPolicy::queue_delay() { return queue_delay_; }
const SlidingMean& TtlPolicy::queue_delay() const { return queue_delay_; }
const RetentionMode& TtlPolicy::mode() const { return mode_; }
size_t TtlPolicy::cold_start_samples() const { return cold_start_samples_; }

nlohmann::json TtlPolicy::to_json() const {
  std::lock_guard lock(mu_);
  return {{"tools", tools_.to_json()}, {"eta", eta_.to_json()}};
}

void TtlPolicy::load(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("tools") || !j.contains("eta")) {
    throw std::invalid_argument("ttl policy: expected {\"tools\": ..., \"eta\": ...}");
  }
  // Parsed into copies first so one bad half leaves both halves untouched.
  ToolStats tools = tools_;
  EtaStats eta;
  tools.load(j.at("tools"));
  eta.load(j.at("eta"));
  std::lock_guard lock(mu_);
  tools_ = tools;
  eta_ = eta;
}

}  // namespace mnemo::memory::ttl
