// The listener and the server's life cycle: accept loop, threads, and an orderly stop.

#include "daemon/net/server.h"

#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "daemon/net/detail/beast.h"
#include "daemon/net/error_body.h"
#include "daemon/net/http_wire.h"

namespace mnemo::daemon::net {

using namespace detail;

class Server::Impl {
 public:
  Impl(ServerOptions options, HttpHandler& http, WsHandler& ws)
      : ctx_(std::move(options), http, ws),
        ioc_(std::max(1, ctx_.options.threads)),
        acceptor_(asio::make_strand(ioc_)),
        retry_timer_(acceptor_.get_executor()) {}

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
      if (ctx_.registry.size() >= ctx_.options.max_connections)
        reject(std::move(socket));
      else
        start_http_session(ctx_, std::move(socket));
      do_accept();
    });
  }

  // Over the connection limit: a short 503 (it fits in an empty send buffer) and close.
  void reject(tcp::socket socket) {
    ctx_.log->warn("connection limit {} reached, refusing a client", ctx_.options.max_connections);
    const std::string bytes = serialize_response(
        error_response(503, "too many connections", "server_error", "server_busy"), false);
    error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(bytes), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  Context ctx_;          // outlives the io_context: sessions destroyed with it refer to it
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
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
void Server::stop(std::chrono::milliseconds drain) { impl_->stop(drain); }

}  // namespace mnemo::daemon::net
