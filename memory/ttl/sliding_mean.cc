#include "memory/ttl/sliding_mean.h"

#include <algorithm>
#include <cmath>

namespace mnemo::memory::ttl {

SlidingMean::SlidingMean(size_t window) : window_(std::max<size_t>(window, 1)) {}

SlidingMean::SlidingMean(const SlidingMean& other) {
  std::lock_guard lock(other.mu_);
  window_ = other.window_;
  values_ = other.values_;
}

SlidingMean& SlidingMean::operator=(const SlidingMean& other) {
  if (this == &other) return *this;
  std::scoped_lock lock(mu_, other.mu_);
  window_ = other.window_;
  values_ = other.values_;
  return *this;
}

void SlidingMean::add(double x) {
  if (!std::isfinite(x)) return;
  std::lock_guard lock(mu_);
  values_.push_back(x);
  while (values_.size() > window_) values_.pop_front();
}

double SlidingMean::mean() const {
  std::lock_guard lock(mu_);
  if (values_.empty()) return 0;
  // Summed afresh (the window is small) so no running-sum drift builds up.
  double sum = 0;
  for (double v : values_) sum += v;
  return sum / static_cast<double>(values_.size());
}

size_t SlidingMean::size() const {
  std::lock_guard lock(mu_);
  return values_.size();
}

}  // namespace mnemo::memory::ttl
