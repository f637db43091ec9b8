#pragma once
// A value that goes up and down: set or adjusted by its owner, or computed
// by a callback at scrape time (KV blocks in use, sessions open), which
// saves the owner from pushing every change.
#include <atomic>
#include <functional>
#include <mutex>

namespace mnemo::daemon::metrics {

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double d = 1) { value_.fetch_add(d, std::memory_order_relaxed); }
  void dec(double d = 1) { value_.fetch_sub(d, std::memory_order_relaxed); }

  // From now on value() calls fn (on the scraping thread; it must be
  // thread-safe and must not touch the Registry). An empty fn goes back to
  // the stored value.
  void set_callback(std::function<double()> fn);

  double value() const;

 private:
  std::atomic<double> value_{0};
  mutable std::mutex fn_mu_;  // only set_callback and scrapes take it
  std::function<double()> fn_;
};

}  // namespace mnemo::daemon::metrics
