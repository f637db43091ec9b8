#pragma once
// A request's event stream: the engine thread pushes, a client pops (blocking
// with next(), or try_next() after a notify callback). After a Done or Error
// event nothing more is pushed.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

#include "engine/serving/request.h"

namespace mnemo::engine {

class TokenStream {
 public:
  void push(StreamEvent e) {
    std::function<void()> notify;
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = e.kind == StreamEvent::Kind::Done || e.kind == StreamEvent::Kind::Error;
      events_.push_back(std::move(e));
      notify = notify_;
    }
    cv_.notify_all();
    if (notify) notify();
  }

  // Called on the pushing (engine) thread after each event, for consumers
  // that cannot block in next(): it should only schedule a try_next() drain.
  void set_notify(std::function<void()> f) {
    bool pending;
    {
      std::lock_guard lock(mu_);
      notify_ = f;
      pending = !events_.empty();
    }
    if (pending && f) f();
  }

  std::optional<StreamEvent> try_next() {
    std::lock_guard lock(mu_);
    if (events_.empty()) return std::nullopt;
    StreamEvent e = std::move(events_.front());
    events_.pop_front();
    return e;
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
  std::function<void()> notify_;
};

}  // namespace mnemo::engine
