#include "daemon/net/detail/ws_handle.h"

#include <utility>

namespace mnemo::daemon::net::detail {

template <class F>
bool WsHandle::reach(F&& f) {
  bool reached = false;
  gate_->if_open([&] {
    if (auto s = sink_.lock()) {
      f(*s);
      reached = true;
    }
  });
  if (!reached) closed_ = true;
  return reached;
}

bool WsHandle::send(std::string text) {
  if (closed_) return false;
  const size_t n = text.size();
  const size_t messages = queued_messages_.fetch_add(1) + 1;
  const size_t bytes = queued_bytes_.fetch_add(n) + n;
  if (messages > limits_.messages || bytes > limits_.bytes) {
    message_done(n);
    // 1013 "try again later": the client reads too slowly for what it asked for.
    if (!closed_.exchange(true))
      reach([&](WsSink& s) { s.post_close(1013, "outbound queue full", true); });
    return false;
  }
  if (!reach([&](WsSink& s) { s.post_send(std::move(text)); })) {
    message_done(n);
    return false;
  }
  return true;
}

void WsHandle::close(uint16_t code, std::string reason) {
  if (closed_.exchange(true)) return;
  reach([&](WsSink& s) { s.post_close(code, std::move(reason), false); });
}

void WsHandle::message_done(size_t bytes) {
  queued_messages_ -= 1;
  queued_bytes_ -= bytes;
}

}  // namespace mnemo::daemon::net::detail
