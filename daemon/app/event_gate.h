#pragma once
// Holds a response's callbacks until the request has been accepted and its
// opening event sent, then runs them in order (and later ones at once).
#include <functional>
#include <mutex>
#include <vector>

namespace mnemo::daemon::app {

class EventGate {
 public:
  void run(std::function<void()> f) {
    std::lock_guard lock(mu_);
    if (open_) f();
    else pending_.push_back(std::move(f));
  }
  // first runs before anything that waited.
  void open(const std::function<void()>& first) {
    std::lock_guard lock(mu_);
    first();
    open_ = true;
    for (auto& f : pending_) f();
    pending_.clear();
  }

 private:
  std::mutex mu_;
  bool open_ = false;
  std::vector<std::function<void()>> pending_;
};

}  // namespace mnemo::daemon::app
