#pragma once

#include <cstddef>
#include <deque>
#include <mutex>

namespace mnemo::memory::ttl {

// T in Continuum's model: the mean queueing delay (seconds) of the last
// `window` requests whose KV had been evicted. Internally locked.
class SlidingMean {
 public:
  explicit SlidingMean(size_t window = 64);  // window 0 is treated as 1
  SlidingMean(const SlidingMean& other);
  SlidingMean& operator=(const SlidingMean& other);

  void add(double x);    // NaN and inf ignored
  double mean() const;   // 0 when empty
  size_t size() const;

 private:
  size_t window_;
  mutable std::mutex mu_;
  std::deque<double> values_;
};

}  // namespace mnemo::memory::ttl
