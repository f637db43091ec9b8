// The listener and the server's life cycle: accept loop, threads, and an orderly stop; and
// handing freed heap back to the system after large requests.

#include "daemon/net/server.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "daemon/net/detail/beast.h"

namespace mnemo::daemon::net {

using namespace detail;

class Server::Impl {
 public:
  Impl(ServerOptions options, HttpHandler& http, WsHandler& ws)
      : ctx_(std::move(options), http, ws),
        ioc_(std::max(1, ctx_.options.threads)),
        acceptor_(asio::make_strand(ioc_)),
        retry_timer_(acceptor_.get_executor()),
        trim_timer_(asio::make_strand(ioc_)) {
    ctx_.large_message_done = [this] {
      asio::post(trim_timer_.get_executor(), [this] { schedule_trim(); });
    };
  }

  void start() {
    const auto& o = ctx_.options;
    const std::string where = o.host + ":" + std::to_string(o.port);
    error_code ec;
    tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(o.host, std::to_string(o.port),
                                      tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || endpoints.empty())
      throw std::runtime_error("net: cannot resolve " + where + ": " + ec.message());
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("net: cannot listen on " + where + ": " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    ctx_.log->info("listening on {}:{}", o.host, port_);

    do_accept();
    const int n = std::max(1, o.threads);
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { run_loop(); });
    started_ = true;
  }

  uint16_t port() const { return port_; }
  size_t connections() const { return ctx_.registry.size(); }
  size_t pending_connections() const { return ctx_.pending.size(); }
  size_t slots_in_use() const { return ctx_.slots.in_use(); }

  void stop(std::chrono::milliseconds drain) {
    if (!started_ || stopped_) return;
    stopped_ = true;
    auto acceptor_closed = std::make_shared<std::promise<void>>();
    asio::post(acceptor_.get_executor(), [this, acceptor_closed] {
      error_code ec;
      acceptor_.close(ec);
      retry_timer_.cancel();
      acceptor_closed->set_value();
    });
    asio::post(trim_timer_.get_executor(), [this] { trim_timer_.cancel(); });
    acceptor_closed->get_future().wait_for(std::chrono::seconds(2));

    const auto now = std::chrono::steady_clock::now();
    for (auto& s : ctx_.registry.snapshot()) s->shutdown();
    if (!ctx_.registry.wait_empty_until(now + drain)) {
      ctx_.log->debug("stop: {} connections left after the drain, cutting them",
                      ctx_.registry.size());
      for (auto& s : ctx_.registry.snapshot()) s->force_close();
      ctx_.registry.wait_empty_until(std::chrono::steady_clock::now() +
                                     std::chrono::milliseconds(500));
    }
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    // From here on no handle can post to the io_context, and no network thread runs.
    ctx_.gate->close();
    for (auto& s : ctx_.registry.snapshot()) s->notify_closed();
    ctx_.registry.clear();
    ctx_.log->info("stopped");
  }

 private:
  void run_loop() {
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        ctx_.log->error("network thread: {}", e.what());
      }
    }
  }

  void do_accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](error_code ec, tcp::socket socket) {
      if (!acceptor_.is_open()) return;
      if (ec) {
        // Out of descriptors, typically: pause instead of spinning on the error.
        ctx_.log->warn("accept failed: {}", ec.message());
        retry_timer_.expires_after(std::chrono::milliseconds(100));
        retry_timer_.async_wait([this](error_code e) {
          if (!e && acceptor_.is_open()) do_accept();
        });
        return;
      }
      // Tokens are small writes that must leave at once, not wait for Nagle's coalescing.
      socket.set_option(tcp::no_delay(true), ec);
      // Admission is the session's: it starts pending (pushing out the oldest pending one when
      // that budget is full) and takes a slot only once a request head proves it a client.
      start_http_session(ctx_, std::move(socket));
      do_accept();
    });
  }

  // glibc keeps freed heap (per-thread arenas, and a heap top below its trim threshold) for
  // reuse, so a few multi-megabyte requests would leave the daemon's RSS high for good. A short
  // delay lets the application drop its copies first; at most one trim a second, and the last
  // large request is always followed by one.
  void schedule_trim() {
    if (trim_armed_) return;
    trim_armed_ = true;
    const auto now = std::chrono::steady_clock::now();
    trim_timer_.expires_at(std::max(now + std::chrono::milliseconds(250),
                                    last_trim_ + std::chrono::seconds(1)));
    trim_timer_.async_wait([this](error_code ec) {
      trim_armed_ = false;
      if (ec) return;
      last_trim_ = std::chrono::steady_clock::now();
#if defined(__GLIBC__)
      const int released = malloc_trim(0);
      ctx_.log->debug("malloc_trim after a large request: {}",
                      released ? "memory returned" : "nothing to return");
#endif
    });
  }

  Context ctx_;          // outlives the io_context: sessions destroyed with it refer to it
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  asio::steady_timer trim_timer_;  // on its own strand: trim_armed_ and last_trim_ live there
  std::chrono::steady_clock::time_point last_trim_{};
  bool trim_armed_ = false;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

Server::Server(ServerOptions options, HttpHandler& http, WsHandler& ws)
    : impl_(std::make_unique<Impl>(std::move(options), http, ws)) {}

Server::~Server() { stop(); }

void Server::start() { impl_->start(); }
uint16_t Server::port() const { return impl_->port(); }
size_t Server::connections() const { return impl_->connections(); }
size_t Server::pending_connections() const { return impl_->pending_connections(); }
size_t Server::slots_in_use() const { return impl_->slots_in_use(); }
void Server::stop(std::chrono::milliseconds drain) { impl_->stop(drain); }

}  // namespace mnemo::daemon::net
