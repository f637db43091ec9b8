// daemon/net end to end: a real Server on an ephemeral loopback port, driven by Beast's own
// synchronous HTTP and WebSocket clients.

#include <gtest/gtest.h>

#include <utility>  // before Asio, for GCC 12 with Boost 1.74

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <poll.h>
#include <spdlog/spdlog.h>

#include "daemon/net/error_body.h"
#include "daemon/net/server.h"

namespace mnemo::daemon::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr size_t kBound = 64;        // outbound messages per connection in these tests
constexpr size_t kMaxFrame = 64 << 10;
constexpr size_t kMaxBody = 64 << 10;

// A hung test aborts the binary instead of stalling ctest.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_([this, limit] {
          std::unique_lock lock(m_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::cerr << "net_test: a test ran past " << limit.count() << " s\n";
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Waits for a predicate that network threads make true.
class Signal {
 public:
  void notify(std::function<void()> change) {
    {
      std::lock_guard lock(m_);
      change();
    }
    cv_.notify_all();
  }
  template <class P>
  bool wait(P pred, std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, limit, pred);
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
};

// Polls for a state nothing signals (bounded).
template <class P>
bool eventually(P pred, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class TestHttp : public HttpHandler {
 public:
  ~TestHttp() override {
    for (auto& t : threads_) t.join();
  }

  void handle(const HttpRequest& req, std::shared_ptr<HttpExchange> ex) override {
    const std::string path = req.path();
    if (path == "/echo") {
      HttpResponse r;
      r.content_type = "text/plain";
      r.body = req.method + " " + req.target + " " + req.body;
      r.headers = {{"X-Seen", req.header("X-Test")}};
      ex->respond(std::move(r));
    } else if (path == "/healthz") {
      ex->respond({200, "application/json", R"({"status":"ok"})", {}});
    } else if (path == "/stream") {
      // Written from another thread, as the engine's token callbacks will be.
      const int n = std::stoi(req.target.substr(req.target.find("n=") + 2));
      std::lock_guard lock(m_);
      threads_.emplace_back([ex, n] {
        ex->begin_stream(200, "text/event-stream");
        for (int i = 0; i < n; ++i) ex->write("data: " + std::to_string(i) + "\n\n");
        ex->end();
      });
    } else if (path == "/hold") {
      // A stream that never ends by itself: the client or stop() ends it.
      ex->on_close([this] { held_closed.notify([this] { ++held_close_calls; }); });
      ex->begin_stream(200, "text/event-stream");
      ex->write("data: first\n\n");
      std::lock_guard lock(m_);
      held = ex;
    } else if (path == "/cut") {
      // A stream dropped half-way: the client must not mistake it for a complete one.
      ex->begin_stream(200, "text/event-stream");
      ex->write("data: partial\n\n");
    } else if (path == "/drop") {
      // Dropped unanswered: the server must answer 500 itself.
    } else {
      ex->respond(error_response(404, "no route " + path));
    }
  }

  std::shared_ptr<HttpExchange> held_exchange() {
    std::lock_guard lock(m_);
    return held;
  }

  Signal held_closed;
  int held_close_calls = 0;  // guarded by held_closed

 private:
  std::mutex m_;
  std::vector<std::thread> threads_;
  std::shared_ptr<HttpExchange> held;
};

class TestWs : public WsHandler {
 public:
  ~TestWs() override {
    for (auto& t : threads_) t.join();
  }

  void on_open(std::shared_ptr<WsConnection> c) override {
    events.notify([&] {
      ++opened;
      last = c;
    });
  }

  void on_message(const std::shared_ptr<WsConnection>& c, std::string text) override {
    if (text == "flood") {
      // Far more than the bound, on the connection's own strand: nothing drains meanwhile.
      int refused_at = -1;
      for (int i = 0; i < 1000; ++i)
        if (!c->send(std::string(1024, 'x'))) {
          refused_at = i;
          break;
        }
      events.notify([&] { flood_refused_at = refused_at; });
    } else if (text.rfind("count ", 0) == 0) {
      const int n = std::stoi(text.substr(6));
      std::lock_guard lock(m_);
      threads_.emplace_back([c, n] {
        for (int i = 0; i < n; ++i) c->send(std::to_string(i));
      });
    } else {
      c->send("echo:" + text);
    }
  }

  void on_close(const std::shared_ptr<WsConnection>& c) override {
    events.notify([&] {
      ++closed;
      closed_ids.push_back(c->id());
    });
  }

  Signal events;  // guards everything below
  int opened = 0;
  int closed = 0;
  int flood_refused_at = -2;
  std::vector<uint64_t> closed_ids;
  std::shared_ptr<WsConnection> last;

 private:
  std::mutex m_;
  std::vector<std::thread> threads_;
};

struct HttpClient {
  explicit HttpClient(uint16_t port) { socket.connect({asio::ip::make_address("127.0.0.1"), port}); }

  http::response<http::string_body> request(
      http::verb verb, const std::string& target, std::string body = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    send(verb, target, std::move(body), headers);
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    return res;
  }
  void send(http::verb verb, const std::string& target, std::string body = {},
            const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(socket, req);
  }

  asio::io_context ioc;
  tcp::socket socket{ioc};
  beast::flat_buffer buffer;
};

struct WsClient {
  explicit WsClient(uint16_t port, const std::string& key = {}) {
    ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
    if (!key.empty())
      ws.set_option(websocket::stream_base::decorator([key](websocket::request_type& req) {
        req.set(http::field::authorization, "Bearer " + key);
      }));
    ws.handshake("127.0.0.1:" + std::to_string(port), "/v1/ws");
  }
  void write(const std::string& text) { ws.write(asio::buffer(text)); }
  std::string read() {
    buffer.clear();
    ws.read(buffer);
    return beast::buffers_to_string(buffer.data());
  }
  // Reads until the server closes; the close code, or 0 when the socket just died.
  uint16_t read_until_closed(int* messages = nullptr) {
    for (;;) {
      beast::error_code ec;
      buffer.clear();
      ws.read(buffer, ec);
      if (ec == websocket::error::closed) return ws.reason().code;
      if (ec) return 0;
      if (messages) ++*messages;
    }
  }

  asio::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buffer;
};

// The status of a WebSocket upgrade request (Beast's sync handshake does not hand back the
// response when the server declines).
int upgrade_status(uint16_t port, const std::string& target, const std::string& auth = {}) {
  HttpClient c(port);
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Connection", "Upgrade"},
      {"Upgrade", "websocket"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}};
  if (!auth.empty()) headers.emplace_back("Authorization", auth);
  c.send(http::verb::get, target, {}, headers);
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // a 101 has no body; an error's is not needed
  http::read_header(c.socket, c.buffer, parser);
  return parser.get().result_int();
}

ServerOptions test_options() {
  ServerOptions o;
  o.port = 0;
  o.max_body_bytes = kMaxBody;
  o.max_frame_bytes = kMaxFrame;
  o.max_outbound_messages = kBound;
  o.close_timeout_ms = 1000;
  return o;
}

class NetServer : public ::testing::Test {
 protected:
  void start(ServerOptions o = test_options()) {
    // MNEMO_NET_TEST_DEBUG=1 shows the server's connection log.
    if (std::getenv("MNEMO_NET_TEST_DEBUG")) spdlog::set_level(spdlog::level::debug);
    server_ = std::make_unique<Server>(std::move(o), http_, ws_);
    server_->start();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  Watchdog watchdog_{20s};
  TestHttp http_;
  TestWs ws_;
  std::unique_ptr<Server> server_;  // declared last: stopped before the handlers go
  uint16_t port_ = 0;
};

TEST_F(NetServer, PlainRequestResponse) {
  start();
  HttpClient c(port_);
  auto res = c.request(http::verb::post, "/echo?q=1", "hello", {{"X-Test", "seen"}});
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "POST /echo?q=1 hello");
  EXPECT_EQ(res[http::field::content_type], "text/plain");
  EXPECT_EQ(res["X-Seen"], "seen");

  auto missing = c.request(http::verb::get, "/nowhere");
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_NE(missing.body().find("no route /nowhere"), std::string::npos);
}

TEST_F(NetServer, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  HttpClient c(port_);
  auto first = c.request(http::verb::get, "/echo", "", {{"X-Test", "1"}});
  ASSERT_EQ(first.result_int(), 200);
  EXPECT_TRUE(first.keep_alive());
  EXPECT_EQ(server_->connections(), 1u);
  auto second = c.request(http::verb::get, "/echo", "", {{"X-Test", "2"}});
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_EQ(second["X-Seen"], "2");
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(NetServer, ChunkedStreamArrivesInOrder) {
  start();
  HttpClient c(port_);
  for (int round = 0; round < 2; ++round) {  // and the connection is reusable afterwards
    c.send(http::verb::get, "/stream?n=20");
    http::response_parser<http::string_body> parser;
    int chunks = 0;
    std::string body;
    auto on_header = [&](std::uint64_t size, beast::string_view, beast::error_code&) {
      if (size > 0) ++chunks;
    };
    auto on_body = [&](std::uint64_t, beast::string_view data, beast::error_code&) {
      body.append(data.data(), data.size());
      return data.size();
    };
    parser.on_chunk_header(on_header);
    parser.on_chunk_body(on_body);
    http::read(c.socket, c.buffer, parser);
    EXPECT_EQ(parser.get().result_int(), 200);
    EXPECT_TRUE(parser.chunked());
    EXPECT_EQ(parser.get()[http::field::content_type], "text/event-stream");
    EXPECT_EQ(chunks, 20);
    std::string expected;
    for (int i = 0; i < 20; ++i) expected += "data: " + std::to_string(i) + "\n\n";
    EXPECT_EQ(body, expected);
  }
}

TEST_F(NetServer, BodyTooLargeIs413) {
  start();
  HttpClient c(port_);
  auto res = c.request(http::verb::post, "/echo", std::string(kMaxBody + 1, 'b'));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_NE(res.body().find(R"("code":"request_too_large")"), std::string::npos) << res.body();
  EXPECT_FALSE(res.keep_alive());
  // The server keeps serving.
  HttpClient fresh(port_);
  EXPECT_EQ(fresh.request(http::verb::post, "/echo", std::string(kMaxBody, 'b')).result_int(),
            200);
}

TEST_F(NetServer, ExpectContinueGetsInterimResponse) {
  start();
  HttpClient c(port_);
  c.send(http::verb::post, "/echo", "body", {{"Expect", "100-continue"}});
  http::response<http::string_body> interim, final_res;
  http::read(c.socket, c.buffer, interim);
  EXPECT_EQ(interim.result_int(), 100);
  http::read(c.socket, c.buffer, final_res);
  EXPECT_EQ(final_res.result_int(), 200);
  EXPECT_EQ(final_res.body(), "POST /echo body");
}

TEST_F(NetServer, DroppedExchangeIsAnswered500) {
  start();
  HttpClient c(port_);
  auto res = c.request(http::verb::get, "/drop");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(c.request(http::verb::get, "/echo").result_int(), 200);  // still keep-alive
}

TEST_F(NetServer, StreamDroppedMidwayIsCutNotTerminated) {
  start();
  HttpClient c(port_);
  c.send(http::verb::get, "/cut");
  http::response_parser<http::string_body> parser;
  beast::error_code ec;
  http::read(c.socket, c.buffer, parser, ec);
  EXPECT_EQ(ec, http::error::partial_message) << ec.message();
  EXPECT_EQ(parser.get().body(), "data: partial\n\n");
}

TEST_F(NetServer, WsPathNeedsUpgradeAndOtherPathsRefuseIt) {
  start();
  HttpClient c(port_);
  auto res = c.request(http::verb::get, "/v1/ws");
  EXPECT_EQ(res.result_int(), 426);
  EXPECT_EQ(res[http::field::upgrade], "websocket");

  EXPECT_EQ(upgrade_status(port_, "/elsewhere"), 404);
  EXPECT_EQ(upgrade_status(port_, "/v1/ws"), 101);
}

TEST_F(NetServer, ApiKeyGuardsEverythingButHealthz) {
  ServerOptions o = test_options();
  o.api_key = "sk-test-123";
  start(o);
  HttpClient c(port_);
  auto missing = c.request(http::verb::get, "/echo");
  EXPECT_EQ(missing.result_int(), 401);
  EXPECT_NE(missing.body().find(R"("code":"invalid_api_key")"), std::string::npos);
  EXPECT_NE(missing.body().find(R"("type":"invalid_request_error")"), std::string::npos);
  auto wrong = c.request(http::verb::get, "/echo", "", {{"Authorization", "Bearer sk-test-124"}});
  EXPECT_EQ(wrong.result_int(), 401);
  auto right = c.request(http::verb::get, "/echo", "", {{"Authorization", "Bearer sk-test-123"}});
  EXPECT_EQ(right.result_int(), 200);
  EXPECT_EQ(c.request(http::verb::get, "/healthz").result_int(), 200);

  // The WebSocket upgrade too.
  EXPECT_EQ(upgrade_status(port_, "/v1/ws"), 401);
  EXPECT_EQ(upgrade_status(port_, "/v1/ws", "Bearer wrong"), 401);
  WsClient ok(port_, "sk-test-123");
  ok.write("hi");
  EXPECT_EQ(ok.read(), "echo:hi");
}

TEST_F(NetServer, WsEchoRoundTrip) {
  start();
  {
    WsClient c(port_);
    bool pong = false;
    c.ws.control_callback([&](websocket::frame_type kind, beast::string_view payload) {
      if (kind == websocket::frame_type::pong && payload == "p1") pong = true;
    });
    c.ws.ping("p1");
    c.write("hello");
    EXPECT_EQ(c.read(), "echo:hello");
    EXPECT_TRUE(pong);  // the pong came back before the echo
    c.ws.close(websocket::close_code::normal);
  }
  EXPECT_TRUE(ws_.events.wait([&] { return ws_.closed == 1; }));
  EXPECT_EQ(ws_.opened, 1);
}

TEST_F(NetServer, WsManyMessagesInOrder) {
  start();
  WsClient c(port_);
  // Echoes, in batches that stay under the outbound bound.
  for (int batch = 0; batch < 10; ++batch) {
    for (int i = 0; i < 50; ++i) c.write("m" + std::to_string(batch * 50 + i));
    for (int i = 0; i < 50; ++i) ASSERT_EQ(c.read(), "echo:m" + std::to_string(batch * 50 + i));
  }
  // Sent from an application thread, not a network one.
  c.write("count 60");
  for (int i = 0; i < 60; ++i) ASSERT_EQ(c.read(), std::to_string(i));
}

TEST_F(NetServer, ManyClientsAtOnce) {
  start();
  constexpr int kClients = 16;
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int k = 0; k < kClients; ++k)
    clients.emplace_back([&, k] {
      WsClient ws(port_);
      HttpClient http(port_);
      bool ok = true;
      for (int i = 0; i < 20; ++i) {
        const std::string m = std::to_string(k) + "/" + std::to_string(i);
        ws.write(m);
        ok = ok && ws.read() == "echo:" + m;
        if (i % 4 == 0)
          ok = ok && http.request(http::verb::post, "/echo", m).body() == "POST /echo " + m;
      }
      if (ok) ++good;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(good.load(), kClients);
  EXPECT_TRUE(ws_.events.wait([&] { return ws_.closed == kClients; }));
  EXPECT_EQ(ws_.opened, kClients);
}

TEST_F(NetServer, WsFrameTooLargeClosesWith1009) {
  start();
  WsClient c(port_);
  c.write(std::string(kMaxFrame + 1, 'f'));
  EXPECT_EQ(c.read_until_closed(), 1009);
  EXPECT_TRUE(ws_.events.wait([&] { return ws_.closed == 1; }));
}

TEST_F(NetServer, WsBinaryFrameClosesWith1003) {
  start();
  WsClient c(port_);
  c.ws.binary(true);
  c.write("bin");
  EXPECT_EQ(c.read_until_closed(), 1003);
}

TEST_F(NetServer, WsSlowReaderIsClosedWith1013AndServerStaysUp) {
  start();
  {
    WsClient slow(port_);
    slow.write("flood");
    // Not reading while the handler floods; only afterwards, to see how it ended.
    ASSERT_TRUE(ws_.events.wait([&] { return ws_.flood_refused_at != -2; }));
    EXPECT_EQ(ws_.flood_refused_at, static_cast<int>(kBound));
    int messages = 0;
    EXPECT_EQ(slow.read_until_closed(&messages), 1013);
    EXPECT_LE(messages, static_cast<int>(kBound));
  }
  EXPECT_TRUE(ws_.events.wait([&] { return ws_.closed == 1; }));
  WsClient fresh(port_);
  fresh.write("still there?");
  EXPECT_EQ(fresh.read(), "echo:still there?");
}

TEST_F(NetServer, ClientVanishingMidStreamFiresOnClose) {
  start();
  {
    HttpClient c(port_);
    c.send(http::verb::get, "/hold");
    std::string received;
    asio::read_until(c.socket, asio::dynamic_buffer(received), "data: first");
  }  // the client goes away without reading the rest
  ASSERT_TRUE(http_.held_closed.wait([&] { return http_.held_close_calls == 1; }));
  auto ex = http_.held_exchange();
  ASSERT_TRUE(ex);
  EXPECT_TRUE(ex->closed());
  EXPECT_FALSE(ex->write("data: late\n\n"));
  // A callback registered after the fact runs at once.
  bool late = false;
  ex->on_close([&] { late = true; });
  EXPECT_TRUE(late);
  EXPECT_EQ(http_.held_close_calls, 1);
}

// Whether the server closes `socket` within `limit` (whatever it sends first is discarded).
bool closed_within(tcp::socket& socket, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  char sink[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{socket.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    beast::error_code ec;
    socket.read_some(asio::buffer(sink), ec);
    if (ec) return true;
  }
}

// Raw sockets that connect and then misbehave: send nothing, or half a request head.
struct Crowd {
  Crowd(uint16_t port, int idle, int slow) {
    for (int i = 0; i < idle + slow; ++i) {
      sockets.emplace_back(ioc);
      sockets.back().connect({asio::ip::make_address("127.0.0.1"), port});
      if (i >= idle) {
        const std::string partial = "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        asio::write(sockets.back(), asio::buffer(partial));
      }
    }
  }
  asio::io_context ioc;
  std::vector<tcp::socket> sockets;
};

TEST_F(NetServer, HeaderDeadlineClosesASlowSender) {
  ServerOptions o = test_options();
  o.header_timeout_s = 1;
  start(o);
  HttpClient c(port_);
  const auto t0 = std::chrono::steady_clock::now();
  // A byte every 200 ms keeps the socket busy but never finishes the head.
  const std::string partial = "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa";
  bool closed = false;
  for (size_t i = 0; i < partial.size() && !closed; ++i) {
    beast::error_code ec;
    asio::write(c.socket, asio::buffer(&partial[i], 1), ec);
    closed = ec || closed_within(c.socket, 200ms);
  }
  EXPECT_TRUE(closed);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 4s);
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(NetServer, BodyHasItsOwnLongerDeadline) {
  ServerOptions o = test_options();
  o.header_timeout_s = 1;
  o.request_timeout_s = 2;
  start(o);
  HttpClient c(port_);
  const std::string head = "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n";
  asio::write(c.socket, asio::buffer(head + "12345"));
  // Past the header deadline the body may still come...
  std::this_thread::sleep_for(1500ms);
  asio::write(c.socket, asio::buffer(std::string("67890")));
  http::response<http::string_body> res;
  http::read(c.socket, c.buffer, res);
  EXPECT_EQ(res.body(), "POST /echo 1234567890");
  // ... but not forever.
  asio::write(c.socket, asio::buffer(head + "12345"));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(closed_within(c.socket, 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1500ms);
}

TEST_F(NetServer, ConnectionsOverTheLimitGet503) {
  ServerOptions o = test_options();
  o.max_connections = 1;
  start(o);
  WsClient first(port_);
  first.write("hi");
  ASSERT_EQ(first.read(), "echo:hi");
  EXPECT_EQ(server_->slots_in_use(), 1u);
  HttpClient second(port_);
  // A connection is not refused for existing, only a request once it is complete.
  EXPECT_FALSE(closed_within(second.socket, 200ms));
  auto res = second.request(http::verb::get, "/echo");
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_NE(res.body().find("too many connections"), std::string::npos);
  EXPECT_FALSE(res.keep_alive());
  // Health checks need no slot.
  HttpClient health(port_);
  EXPECT_EQ(health.request(http::verb::get, "/healthz").result_int(), 200);
}

TEST_F(NetServer, IdleAndUnauthenticatedConnectionsHoldNoSlot) {
  ServerOptions o = test_options();
  o.api_key = "sk-test-123";
  o.max_connections = 1;
  start(o);
  HttpClient anonymous(port_);
  EXPECT_EQ(anonymous.request(http::verb::get, "/echo").result_int(), 401);
  HttpClient idle(port_);
  EXPECT_EQ(idle.request(http::verb::get, "/echo", "", {{"Authorization", "Bearer sk-test-123"}})
                .result_int(),
            200);
  // Both wait for their next request without a slot, so the one slot is free for a third.
  EXPECT_TRUE(eventually([&] { return server_->pending_connections() == 2; }));
  EXPECT_EQ(server_->slots_in_use(), 0u);
  HttpClient third(port_);
  EXPECT_EQ(third.request(http::verb::get, "/echo", "", {{"Authorization", "Bearer sk-test-123"}})
                .result_int(),
            200);
  // A 401 for a request with a body is sent without reading the body, and closes.
  auto refused = anonymous.request(http::verb::post, "/echo", std::string(1000, 'b'));
  EXPECT_EQ(refused.result_int(), 401);
  EXPECT_FALSE(refused.keep_alive());
}

TEST_F(NetServer, IdleAndSlowSocketsDoNotBlockAnAuthenticatedRequest) {
  ServerOptions o = test_options();
  o.api_key = "sk-test-123";
  o.max_connections = 4;
  o.max_pending_connections = 32;
  start(o);
  Crowd crowd(port_, 100, 50);  // far more than both budgets
  EXPECT_TRUE(eventually([&] { return server_->pending_connections() == 32; }));
  for (int round = 0; round < 3; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    HttpClient c(port_);
    auto res = c.request(http::verb::post, "/echo", "hi", {{"Authorization", "Bearer sk-test-123"}});
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "POST /echo hi");
    HttpClient h(port_);
    EXPECT_EQ(h.request(http::verb::get, "/healthz").result_int(), 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  }
  EXPECT_LE(server_->pending_connections(), 32u);
  EXPECT_TRUE(eventually([&] { return server_->slots_in_use() == 0; }));
}

TEST_F(NetServer, FullPendingBudgetClosesTheOldest) {
  ServerOptions o = test_options();
  o.max_pending_connections = 4;
  start(o);
  Crowd first(port_, 4, 0);
  ASSERT_TRUE(eventually([&] { return server_->pending_connections() == 4; }));
  for (auto& s : first.sockets) EXPECT_FALSE(closed_within(s, 20ms));
  Crowd second(port_, 2, 0);
  // The two that waited longest make room; the newer ones stay.
  EXPECT_TRUE(closed_within(first.sockets[0], 2s));
  EXPECT_TRUE(closed_within(first.sockets[1], 2s));
  EXPECT_FALSE(closed_within(first.sockets[2], 100ms));
  EXPECT_FALSE(closed_within(second.sockets[1], 100ms));
  EXPECT_TRUE(eventually([&] { return server_->connections() == 4; }));
  EXPECT_EQ(server_->pending_connections(), 4u);
}

TEST_F(NetServer, IdleKeepAliveConnectionIsClosedAfterTheHeaderTimeout) {
  ServerOptions o = test_options();
  o.header_timeout_s = 1;
  start(o);
  HttpClient c(port_);
  ASSERT_EQ(c.request(http::verb::get, "/echo").result_int(), 200);
  // Pending again once the server has seen its write complete (the client may read first).
  EXPECT_TRUE(eventually([&] { return server_->pending_connections() == 1; }));
  EXPECT_EQ(server_->slots_in_use(), 0u);
  EXPECT_TRUE(closed_within(c.socket, 3s));
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(NetServer, NotFoundForANonUtf8PathIsValidJson) {
  start();
  for (const std::string upgrade : {"", "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                                        "Sec-WebSocket-Version: 13\r\n"
                                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"}) {
    HttpClient c(port_);
    const std::string req =
        "GET /no\xff\xfe\xc0\xafwhere HTTP/1.1\r\nHost: 127.0.0.1\r\n" + upgrade + "\r\n";
    asio::write(c.socket, asio::buffer(req));
    http::response<http::string_body> res;
    http::read(c.socket, c.buffer, res);
    EXPECT_EQ(res.result_int(), 404);
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(res.body())) << res.body();
    const std::string message = j["error"]["message"];
    EXPECT_NE(message.find("/no\uFFFD\uFFFD"), std::string::npos) << message;
  }
}

TEST_F(NetServer, StopWithOpenConnectionsReturnsPromptly) {
  start();
  WsClient ws(port_);
  ws.write("hi");
  ASSERT_EQ(ws.read(), "echo:hi");
  uint16_t ws_close_code = 0;
  std::thread ws_reader([&] { ws_close_code = ws.read_until_closed(); });

  HttpClient idle(port_);
  ASSERT_EQ(idle.request(http::verb::get, "/echo").result_int(), 200);

  HttpClient streaming(port_);
  streaming.send(http::verb::get, "/hold");
  std::string received;
  asio::read_until(streaming.socket, asio::dynamic_buffer(received), "data: first");
  EXPECT_EQ(server_->connections(), 3u);

  const auto t0 = std::chrono::steady_clock::now();
  server_->stop(300ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);  // a hang guard, not a speed claim
  ws_reader.join();

  EXPECT_EQ(ws_close_code, 1001);
  EXPECT_EQ(ws_.closed, 1);
  EXPECT_EQ(http_.held_close_calls, 1);
  EXPECT_EQ(server_->connections(), 0u);
  // Handles the application still holds now report closed.
  EXPECT_FALSE(ws_.last->send("after stop"));
  EXPECT_FALSE(http_.held_exchange()->write("after stop"));
  // The idle keep-alive connection was closed.
  beast::error_code ec;
  http::response<http::string_body> none;
  http::read(idle.socket, idle.buffer, none, ec);
  EXPECT_TRUE(ec);
  server_->stop();  // idempotent
}

}  // namespace
}  // namespace mnemo::daemon::net
