#pragma once
// A request's event stream: the engine thread pushes, a client pops. After a
// Done or Error event nothing more is pushed.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "engine/serving/request.h"

namespace mnemo::engine {

class TokenStream {
 public:
  void push(StreamEvent e) {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = e.kind != StreamEvent::Kind::Token;
      events_.push_back(std::move(e));
    }
    cv_.notify_all();
  }

  // Waits up to `timeout` for the next event; nullopt on timeout.
  std::optional<StreamEvent> next(std::chrono::milliseconds timeout = std::chrono::hours(24)) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
    StreamEvent e = std::move(events_.front());
    events_.pop_front();
    return e;
  }

  bool closed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamEvent> events_;
  bool closed_ = false;
};

}  // namespace mnemo::engine
