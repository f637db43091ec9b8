#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "daemon/net/detail/context.h"
#include "daemon/net/detail/sinks.h"
#include "daemon/net/handlers.h"

namespace mnemo::daemon::net::detail {

// The WsConnection handed to the application. It holds its session weakly: the server, not
// the application, decides how long a socket lives.
class WsHandle final : public WsConnection {
 public:
  WsHandle(uint64_t id, std::shared_ptr<Gate> gate, OutboundLimits limits)
      : id_(id), gate_(std::move(gate)), limits_(limits) {}
  void attach(std::weak_ptr<WsSink> sink) { sink_ = std::move(sink); }
  // Before the handler hears of it.
  void set_path(std::string path) { path_ = std::move(path); }

  uint64_t id() const override { return id_; }
  std::string_view path() const override { return path_; }
  bool send(std::string text) override;
  void close(uint16_t code, std::string reason) override;

  // From the session.
  void mark_closed() { closed_ = true; }
  void message_done(size_t bytes);  // written to the socket, or dropped

 private:
  template <class F>
  bool reach(F&& f);

  const uint64_t id_;
  std::string path_;
  std::shared_ptr<Gate> gate_;
  const OutboundLimits limits_;
  std::weak_ptr<WsSink> sink_;
  std::atomic<bool> closed_{false};
  std::atomic<size_t> queued_messages_{0};
  std::atomic<size_t> queued_bytes_{0};
};

}  // namespace mnemo::daemon::net::detail
