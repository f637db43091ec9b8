#include "daemon/app/responses_ws.h"

#include <spdlog/spdlog.h>

#include "daemon/app/responses_request.h"
#include "daemon/protocol/json_intake.h"

namespace mnemo::daemon::app {

using json = protocol::Json;

struct ResponsesWs::Connection {
  std::shared_ptr<net::WsConnection> ws;
  std::shared_ptr<SerialQueue> queue;
  std::mutex mu;
  bool busy = false;                        // a response is running
  std::optional<engine::RequestId> running;  // its engine request, to cancel on close
};

// One response's events as WebSocket messages; the connection takes the next
// response.create once it ends.
class ResponsesWs::Events : public ResponseEvents {
 public:
  explicit Events(std::shared_ptr<Connection> c) : c_(std::move(c)) {}
  bool streaming() const override { return true; }
  void begin() override {}
  void event(const std::string& type, const json& e) override {
    // The connection is free before the client can see the response end: a
    // client that sends its next response.create the moment it reads this
    // event must not find the previous one still running.
    if (type == "response.completed" || type == "response.incomplete" || type == "response.failed") release();
    c_->ws->send(e.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  void end() override { release(); }
  void respond(int status, const json& body) override {
    release();
    c_->ws->send(error_event(status, body).dump(-1, ' ', false, json::error_handler_t::replace));
  }

  static json error_event(int status, const json& body) {
    return {{"type", "error"}, {"status", status}, {"error", body.contains("error") ? body["error"] : body}};
  }

 private:
  // Once per response: end() after a terminal event must not free the
  // connection from the next response, which may already be running.
  void release() {
    std::lock_guard lock(c_->mu);
    if (released_) return;
    released_ = true;
    c_->busy = false;
    c_->running.reset();
  }
  std::shared_ptr<Connection> c_;
  bool released_ = false;  // guarded by c_->mu
};

ResponsesWs::ResponsesWs(ResponsesApi& api, WorkerPool& pool, AppMetrics& metrics, size_t max_frame_bytes)
    : api_(api), pool_(pool), metrics_(metrics), max_frame_bytes_(max_frame_bytes) {}

void ResponsesWs::on_open(std::shared_ptr<net::WsConnection> ws) {
  auto c = std::make_shared<Connection>();
  c->ws = ws;
  c->queue = std::make_shared<SerialQueue>(pool_);
  std::lock_guard lock(mu_);
  connections_[ws->id()] = c;
  metrics_.ws_connections.inc();
}

void ResponsesWs::on_close(const std::shared_ptr<net::WsConnection>& ws) {
  std::shared_ptr<Connection> c;
  {
    std::lock_guard lock(mu_);
    auto it = connections_.find(ws->id());
    if (it == connections_.end()) return;
    c = it->second;
    connections_.erase(it);
    metrics_.ws_connections.dec();
  }
  std::optional<engine::RequestId> running;
  {
    std::lock_guard lock(c->mu);
    running = c->running;
  }
  // A client that left mid-response: stop generating for nobody.
  if (running) api_.cancel(*running);
}

void ResponsesWs::on_message(const std::shared_ptr<net::WsConnection>& ws, std::string text) {
  std::shared_ptr<Connection> c;
  {
    std::lock_guard lock(mu_);
    auto it = connections_.find(ws->id());
    if (it == connections_.end()) return;
    c = it->second;
  }
  metrics_.requests.labels({"responses_ws"}).inc();
  c->queue->post([this, c, text = std::move(text)] { create(c, text); });
}

void ResponsesWs::create(const std::shared_ptr<Connection>& c, const std::string& text) {
  const auto refuse = [&](int status, const json& body) {
    metrics_.errors.inc();
    c->ws->send(Events::error_event(status, body).dump(-1, ' ', false, json::error_handler_t::replace));
  };
  if (api_.stopping())
    return refuse(503, {{"message", "the daemon is stopping"}, {"type", "server_error"}, {"param", nullptr},
                        {"code", "shutting_down"}});
  auto out = std::make_shared<Events>(c);
  try {
    protocol::IntakeLimits limits;
    limits.max_bytes = max_frame_bytes_;
    json event = protocol::parse_client_json(text, limits);
    if (!event.is_object() || !event.contains("type") || event["type"] != "response.create")
      throw BadRequest("expected a response.create event (a JSON object with \"type\": \"response.create\")", "type");
    event.erase("type");
    event.erase("stream");  // implicit here
    ResponsesRequest r = parse_responses_request(event);
    {
      std::lock_guard lock(c->mu);
      if (c->busy)
        throw BadRequest("a response is already running on this connection: wait for its last event", "type");
      c->busy = true;
    }
    try {
      const engine::RequestId id = api_.start(std::move(r), out);
      std::lock_guard lock(c->mu);
      if (c->busy) c->running = id;
    } catch (...) {
      std::lock_guard lock(c->mu);
      c->busy = false;
      throw;
    }
  } catch (const std::exception& e) {
    const auto [status, body] = ResponsesApi::error_body(e);
    refuse(status, body);
  }
}

}  // namespace mnemo::daemon::app
