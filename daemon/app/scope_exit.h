#pragma once
// Runs a function when the scope ends, on every path out of it (return or
// exception), unless dismissed or already run.
#include <utility>

namespace mnemo::daemon::app {

template <class F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(std::move(f)) {}
  ~ScopeExit() { run(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

  void run() {  // now rather than at the end of the scope; once
    if (armed_) {
      armed_ = false;
      f_();
    }
  }
  void dismiss() { armed_ = false; }

 private:
  F f_;
  bool armed_ = true;
};

}  // namespace mnemo::daemon::app
