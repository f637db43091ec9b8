#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "daemon/net/detail/context.h"
#include "daemon/net/detail/sinks.h"
#include "daemon/net/handlers.h"

namespace mnemo::daemon::net::detail {

// The HttpExchange handed to the application. Its state that the application must see at
// once (closed, queue depth) is atomic here; the bytes go to the session's strand.
class Exchange final : public HttpExchange {
 public:
  Exchange(std::shared_ptr<Gate> gate, std::weak_ptr<ExchangeSink> sink, uint64_t seq,
           OutboundLimits limits, bool keep_alive);
  ~Exchange() override;

  void respond(HttpResponse r) override;
  void begin_stream(int status, std::string content_type) override;
  bool write(std::string chunk) override;
  void end() override;
  bool closed() const override { return closed_.load(); }
  void on_close(std::function<void()> f) override;

  // From the session: the connection is gone; runs the on_close callback if still due.
  void connection_lost();
  // From the session: a counted stream chunk reached the socket.
  void chunk_written(size_t bytes);

 private:
  enum Phase : int { kFresh, kStreaming, kDone };
  template <class F>
  bool reach(F&& f);
  bool advance(Phase from, Phase to);

  std::shared_ptr<Gate> gate_;
  std::weak_ptr<ExchangeSink> sink_;
  const uint64_t seq_;
  const OutboundLimits limits_;
  const bool keep_alive_;
  std::atomic<int> phase_{kFresh};
  std::atomic<bool> closed_{false};
  std::atomic<size_t> queued_messages_{0};
  std::atomic<size_t> queued_bytes_{0};
  std::mutex m_;
  std::function<void()> on_close_;
  bool lost_ = false;  // connection_lost() ran while the answer was incomplete
};

}  // namespace mnemo::daemon::net::detail
