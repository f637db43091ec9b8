#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>

namespace mnemo::memory::ttl {

// Reload(r) when r's KV must be prefilled again: prefill seconds as
// a + b*t + c*t^2 in tokens t, a least-squares fit of the last `history`
// (tokens, seconds) measurements with b, c >= 0 so a longer prompt never
// looks cheaper. With one distinct token count the fit is proportional
// (seconds per token), with two it is linear. predict() is never negative
// and 0 before any measurement. Internally locked.
class ReloadModel {
 public:
  explicit ReloadModel(size_t history = 256);
  ReloadModel(const ReloadModel& other);
  ReloadModel& operator=(const ReloadModel& other);

  void add(int64_t tokens, double seconds);  // tokens < 0, seconds < 0 or NaN ignored
  double predict(int64_t tokens) const;
  size_t size() const;
  // {a, b, c} of the current fit, seconds per token^i (for logs and tests).
  std::array<double, 3> coefficients() const;

 private:
  void refit();  // mu_ held

  size_t history_;
  mutable std::mutex mu_;
  std::deque<std::pair<int64_t, double>> points_;
  std::array<double, 3> coef_{0, 0, 0};
};

}  // namespace mnemo::memory::ttl
