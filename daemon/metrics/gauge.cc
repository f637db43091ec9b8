#include "daemon/metrics/gauge.h"

#include <utility>

namespace mnemo::daemon::metrics {

void Gauge::set_callback(std::function<double()> fn) {
  std::lock_guard lock(fn_mu_);
  fn_ = std::move(fn);
}

double Gauge::value() const {
  std::lock_guard lock(fn_mu_);
  return fn_ ? fn_() : value_.load(std::memory_order_relaxed);
}

}  // namespace mnemo::daemon::metrics
