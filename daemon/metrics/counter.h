#pragma once
// A monotonically increasing count (requests, tokens). One relaxed atomic
// add per update: counters are read only at scrape time, so no ordering with
// other memory is needed.
#include <atomic>
#include <cstdint>

namespace mnemo::daemon::metrics {

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace mnemo::daemon::metrics
