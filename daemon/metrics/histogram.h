#pragma once
// Observations counted into fixed buckets (latencies in seconds, token
// counts). An observation is a binary search over the bounds and two
// relaxed atomic updates: no lock, so streaming threads never wait on each
// other or on a scrape.
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace mnemo::daemon::metrics {

class Histogram {
 public:
  // bounds: upper bounds of the buckets, strictly increasing and finite;
  // the +Inf bucket is implicit. Throws std::invalid_argument otherwise.
  explicit Histogram(std::vector<double> bounds);

  void observe(double v);  // NaN is ignored

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries, the last is +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  // Buckets and count agree with each other; sum may include an
  // observation the buckets do not yet show (Prometheus tolerates that).
  Snapshot snapshot() const;

  std::span<const double> bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; +Inf last
  std::atomic<double> sum_{0};
};

// 1 ms .. 10 s, for request latencies, time to first token.
std::vector<double> latency_buckets();
// start, start*factor, ... (count bounds); throws std::invalid_argument
// unless start > 0, factor > 1, count >= 1.
std::vector<double> exponential_buckets(double start, double factor, int count);

}  // namespace mnemo::daemon::metrics
