#include "daemon/app/responses_api.h"

#include <spdlog/spdlog.h>

#include "daemon/app/event_gate.h"
#include "daemon/app/records.h"
#include "daemon/app/responses_items.h"
#include "daemon/app/responses_request.h"
#include "daemon/app/storage_errors.h"
#include "daemon/net/error_body.h"

namespace mnemo::daemon::app {

using json = protocol::Json;

namespace {

class Overloaded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

net::HttpResponse json_response(const json& j, int status = 200) {
  net::HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

// OpenAI's error object, with the offending parameter.
json error_json(const std::string& message, const std::string& param = "", const char* type = "invalid_request_error",
                const char* code = nullptr) {
  return {{"error",
           {{"message", message}, {"type", type}, {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code ? json(code) : json(nullptr)}}}};
}

net::HttpResponse error(int status, const std::string& message, const std::string& param = "",
                        const char* type = "invalid_request_error", const char* code = nullptr) {
  return json_response(error_json(message, param, type, code), status);
}

// A response's events as SSE on its HTTP exchange.
class HttpEvents : public ResponseEvents {
 public:
  HttpEvents(std::shared_ptr<net::HttpExchange> ex, bool stream) : ex_(std::move(ex)), stream_(stream) {}
  bool streaming() const override { return stream_; }
  void begin() override { ex_->begin_stream(200, "text/event-stream"); }
  void event(const std::string& type, const json& e) override {
    ex_->write("event: " + type + "\ndata: " + e.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n");
  }
  void end() override { ex_->end(); }
  void respond(int status, const json& body) override { ex_->respond(json_response(body, status)); }

 private:
  std::shared_ptr<net::HttpExchange> ex_;
  bool stream_;
};

json usage_json(int64_t input, int64_t cached, int64_t output) {
  return {{"input_tokens", input},
          {"input_tokens_details", {{"cached_tokens", cached}}},
          {"output_tokens", output},
          {"output_tokens_details", {{"reasoning_tokens", 0}}},
          {"total_tokens", input + output}};
}

// "limit=5&order=asc" -> the value of one parameter, undecoded (ids and
// numbers need no decoding).
std::optional<std::string> query_param(const std::string& target, const std::string& name) {
  const auto q = target.find('?');
  if (q == std::string::npos) return std::nullopt;
  std::string_view rest(target);
  rest.remove_prefix(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return std::string(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace

// One response: accumulates it (plain) or streams its events (SSE); at the
// end stores it with its input and output, then answers.
class ResponsesApi::Sink : public ResponseSink {
 public:
  Sink(ResponsesApi& api, std::shared_ptr<ResponseEvents> out, ResponsesRequest req, std::string id,
       std::optional<store::ResponseRecord> previous, bool previous_is_tip)
      : api_(api), out_(std::move(out)), req_(std::move(req)), id_(std::move(id)), previous_(std::move(previous)),
        previous_is_tip_(previous_is_tip), created_at_(now_ms()) {
    req_.stream = out_->streaming();
  }

  void open() {
    gate_.open([this] {
      if (!req_.stream) return;
      out_->begin();
      const json r = object("in_progress", json::array(), nullptr);
      event("response.created", {{"response", r}});
      event("response.in_progress", {{"response", r}});
    });
  }

  void on_delta(const std::string& text) override {
    gate_.run([=, this] {
      if (!req_.stream) return;
      if (!text_open_) open_text();
      text_ += text;
      event("response.output_text.delta",
            {{"item_id", text_id_}, {"output_index", items_.size()}, {"content_index", 0}, {"delta", text}});
    });
  }

  void on_tool_call(const engine::ToolCall& call) override {
    gate_.run([=, this] {
      if (!req_.stream) return;
      close_text();
      const std::string id = item_id("fc_", id_, 'o', items_.size());
      const size_t index = items_.size();
      event("response.output_item.added", {{"output_index", index}, {"item", [&] {
                                              json i = function_call_item(id, call, "in_progress");
                                              i["arguments"] = "";
                                              return i;
                                            }()}});
      event("response.function_call_arguments.delta",
            {{"item_id", id}, {"output_index", index}, {"delta", call.arguments}});
      event("response.function_call_arguments.done",
            {{"item_id", id}, {"output_index", index}, {"arguments", call.arguments}});
      const json done = function_call_item(id, call, "completed");
      event("response.output_item.done", {{"output_index", index}, {"item", done}});
      items_.push_back(done);
    });
  }

  void on_done(const ResponseOutcome& o) override {
    gate_.run([=, this] { done(o); });
  }

 private:
  // The response object, in OpenAI's field order.
  json object(const char* status, json output, json usage) const {
    json r;
    r["id"] = id_;
    r["object"] = "response";
    r["created_at"] = created_at_ / 1000;
    r["status"] = status;
    r["error"] = nullptr;
    r["incomplete_details"] = nullptr;
    r["instructions"] = req_.instructions ? json(*req_.instructions) : json(nullptr);
    r["max_output_tokens"] = req_.sampling.max_tokens ? json(*req_.sampling.max_tokens) : json(nullptr);
    r["model"] = req_.model.empty() ? api_.model_name_ : req_.model;
    r["output"] = std::move(output);
    r["parallel_tool_calls"] = req_.parallel_tool_calls;
    r["previous_response_id"] = req_.previous_response_id ? json(*req_.previous_response_id) : json(nullptr);
    r["reasoning"] = {{"effort", nullptr}, {"summary", nullptr}};
    r["store"] = req_.store;
    r["temperature"] = req_.sampling.temperature.value_or(protocol::kDefaultTemperature);
    r["text"] = req_.text;
    r["tool_choice"] = req_.echo_tool_choice;
    r["tools"] = req_.echo_tools;
    r["top_p"] = req_.sampling.top_p.value_or(protocol::kDefaultTopP);
    r["truncation"] = req_.truncation;
    r["usage"] = std::move(usage);
    r["user"] = nullptr;
    r["metadata"] = req_.metadata;
    return r;
  }

  void event(const char* type, json fields) {
    json e = {{"type", type}, {"sequence_number", seq_++}};
    for (auto& [k, v] : fields.items()) e[k] = v;
    out_->event(type, e);
  }

  void open_text() {
    text_open_ = true;
    text_id_ = item_id("msg_", id_, 'o', items_.size());
    event("response.output_item.added", {{"output_index", items_.size()}, {"item", message_item(text_id_, "", "in_progress")}});
    event("response.content_part.added",
          {{"item_id", text_id_}, {"output_index", items_.size()}, {"content_index", 0},
           {"part", {{"type", "output_text"}, {"text", ""}, {"annotations", json::array()}}}});
  }

  void close_text() {
    if (!text_open_) return;
    text_open_ = false;
    const size_t index = items_.size();
    event("response.output_text.done",
          {{"item_id", text_id_}, {"output_index", index}, {"content_index", 0}, {"text", text_}});
    event("response.content_part.done",
          {{"item_id", text_id_}, {"output_index", index}, {"content_index", 0},
           {"part", {{"type", "output_text"}, {"text", text_}, {"annotations", json::array()}}}});
    const json item = message_item(text_id_, text_, "completed");
    event("response.output_item.done", {{"output_index", index}, {"item", item}});
    items_.push_back(item);
    text_.clear();
  }

  void done(const ResponseOutcome& o) {
    api_.metrics_.record(o);
    if (req_.stream) {
      close_text();
      if (items_.empty()) {  // nothing generated: still one (empty) message, as non-streaming shows
        open_text();
        close_text();
      }
    }
    json output = req_.stream ? items_ : output_items(id_, o);
    json r = object("completed", std::move(output), usage_json(o.prompt_tokens, o.cached_tokens, o.completion_tokens));
    const char* final_event = "response.completed";
    if (o.finish_reason == "length") {
      r["status"] = "incomplete";
      r["incomplete_details"] = {{"reason", "max_output_tokens"}};
      final_event = "response.incomplete";
    } else if (o.finish_reason == "cancelled" || o.finish_reason == "shutdown") {
      r["status"] = "cancelled";
      final_event = "response.failed";
    } else if (o.finish_reason == "error") {
      r["status"] = "failed";
      r["error"] = {{"code", "server_error"}, {"message", o.error}};
      final_event = "response.failed";
    }
    const std::string status = r["status"];
    if (req_.store && (status == "completed" || status == "incomplete")) {
      try {
        save(r, o);
      } catch (const std::exception& e) {
        spdlog::error("response {}: not stored: {}", id_, e.what());
        api_.metrics_.errors.inc();
        r["status"] = "failed";
        r["error"] = {{"code", "server_error"}, {"message", std::string("the response was not saved: ") + e.what()}};
        final_event = "response.failed";
      }
    }
    spdlog::info("response {}: {} ({} input tokens, {} cached, {} output){}", id_, r["status"].get<std::string>(),
                 o.prompt_tokens, o.cached_tokens, o.completion_tokens,
                 req_.previous_response_id ? " after " + *req_.previous_response_id : std::string());
    if (req_.stream) {
      if (r["status"] == "failed") event("error", {{"code", "server_error"}, {"message", r["error"]["message"]}, {"param", nullptr}});
      event(final_event, {{"response", r}});
      out_->end();
    } else if (r["status"] == "failed") {
      out_->respond(500, error_json(r["error"]["message"], "", "server_error", "server_error"));
    } else {
      out_->respond(200, r);
    }
  }

  // The chain's session: the previous response's when it is that session's
  // last, a fork of it up to the previous response when the chain branches,
  // or a new session.
  void save(const json& r, const ResponseOutcome& o) {
    store::ResponseRecord rec;
    rec.id = id_;
    rec.previous_id = req_.previous_response_id;
    rec.created_at = created_at_;
    rec.json = r;
    if (previous_ && previous_is_tip_) {
      rec.session_id = previous_->session_id;
    } else {
      store::SessionRecord s;
      s.id = make_id("sess_");
      s.created_at = created_at_;
      s.model = r["model"];
      s.metadata = {{"mnemo", "responses"}};
      if (previous_) api_.store_.fork_session(s, previous_->session_id, previous_->output_to);
      else api_.store_.create_session(s);
      rec.session_id = s.id;
    }
    std::vector<store::MessageRecord> input, output;
    for (const auto& m : req_.input) input.push_back(to_record(m, created_at_));
    engine::ChatMessage reply{.role = "assistant", .content = o.content, .tool_calls = o.tool_calls};
    output.push_back(to_record(reply, now_ms()));
    output.back().usage = {{"prompt_tokens", o.prompt_tokens},
                           {"cached_tokens", o.cached_tokens},
                           {"completion_tokens", o.completion_tokens}};
    api_.store_.save_response(rec, input, output);
  }

  ResponsesApi& api_;
  std::shared_ptr<ResponseEvents> out_;
  ResponsesRequest req_;
  std::string id_;
  std::optional<store::ResponseRecord> previous_;
  bool previous_is_tip_;
  int64_t created_at_;
  EventGate gate_;
  int64_t seq_ = 0;
  json items_ = json::array();  // streamed output items, completed
  bool text_open_ = false;
  std::string text_id_, text_;
};

ResponsesApi::ResponsesApi(std::string model_name, store::Store& store, Responder& responder, WorkerPool& pool,
                           AppMetrics& metrics)
    : model_name_(std::move(model_name)), store_(store), responder_(responder), pool_(pool), metrics_(metrics) {}

void ResponsesApi::handle(const net::HttpRequest& req, std::shared_ptr<net::HttpExchange> ex) {
  const std::string path = req.path();
  constexpr std::string_view base = "/v1/responses";
  std::string rest = path.size() > base.size() ? path.substr(base.size() + 1) : "";
  if (rest.empty()) {
    if (req.method != "POST") return ex->respond(error(405, "use POST for /v1/responses", "", "invalid_request_error", "method_not_allowed"));
    if (stopping_) return ex->respond(error(503, "the daemon is stopping", "", "server_error", "shutting_down"));
    // Rendering, tokenizing and store reads may take a while: off the network thread.
    return pool_.post([this, req, ex] { create(req, ex); });
  }
  const auto slash = rest.find('/');
  const std::string id = rest.substr(0, slash);
  const std::string sub = slash == std::string::npos ? "" : rest.substr(slash + 1);
  pool_.post([this, req, ex, id, sub] {
    try {
      if (sub.empty() && req.method == "GET") retrieve(id, ex);
      else if (sub.empty() && req.method == "DELETE") remove(id, ex);
      else if (sub == "input_items" && req.method == "GET") list_input_items(id, req, ex);
      else ex->respond(error(404, "no route " + req.method + " " + req.path(), "", "invalid_request_error", "not_found"));
    } catch (const store::StorageFailure& e) {
      ex->respond(error(http_status_for(e), storage_message(e, "nothing was read"), "", "server_error"));
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", req.method, req.path(), e.what());
      ex->respond(error(500, "internal error", "", "server_error"));
    }
  });
}

engine::RequestId ResponsesApi::start(ResponsesRequest r, std::shared_ptr<ResponseEvents> out) {
  ResponseSpec spec;
  if (r.instructions) spec.messages.push_back(engine::ChatMessage{.role = "system", .content = *r.instructions});
  std::optional<store::ResponseRecord> previous;
  bool tip = false;
  if (r.previous_response_id) {
    previous = store_.get_response(*r.previous_response_id);
    if (!previous) throw PreviousResponseNotFound(*r.previous_response_id);
    tip = store_.message_count(previous->session_id) + 1 == previous->output_to;
    for (const auto& m : store_.history(previous->session_id))
      if (m.seq < previous->output_to) spec.messages.push_back(to_chat(m));
  }
  // A new chain, or a branch, is a new session: bounded like session.create.
  if (r.store && (!previous || !tip) && store_.count_sessions() >= max_sessions_)
    throw Overloaded("mnemod holds its maximum of " + std::to_string(max_sessions_) +
                     " sessions (--max-sessions); continue a chain with previous_response_id, or delete sessions");
  for (const auto& m : r.input) spec.messages.push_back(m);
  spec.tools = r.tools;
  spec.tool_choice = r.tool_choice;
  spec.function = r.function;
  spec.sampling = r.sampling;
  spec.format = r.format;
  const std::string id = make_id("resp_");
  auto sink = std::make_shared<Sink>(*this, std::move(out), std::move(r), id, std::move(previous), tip);
  const engine::RequestId rid = responder_.start(spec, sink);
  sink->open();
  return rid;
}

std::pair<int, json> ResponsesApi::error_body(const std::exception& e) {
  if (auto* o = dynamic_cast<const Overloaded*>(&e))
    return {429, error_json(o->what(), "", "rate_limit_error", "overloaded")};
  if (auto* i = dynamic_cast<const protocol::IntakeError*>(&e))
    return {400, error_json(i->what(), "", "invalid_request_error", "invalid_json")};
  if (auto* p = dynamic_cast<const PreviousResponseNotFound*>(&e))
    return {400, error_json(p->what(), p->field(), "invalid_request_error", "previous_response_not_found")};
  if (auto* b = dynamic_cast<const BadRequest*>(&e)) return {400, error_json(b->what(), b->field())};
  if (auto* j = dynamic_cast<const nlohmann::json::exception*>(&e))
    return {400, error_json("bad request body: " + protocol::json_error_message(*j))};
  if (auto* f = dynamic_cast<const store::StorageFailure*>(&e))
    return {http_status_for(*f), error_json(storage_message(*f, "nothing was saved"), "", "server_error")};
  spdlog::error("response refused: {}", e.what());
  return {500, error_json("internal error", "", "server_error")};
}

void ResponsesApi::create(const net::HttpRequest& req, std::shared_ptr<net::HttpExchange> ex) {
  try {
    protocol::IntakeLimits limits;
    limits.max_bytes = req.body.size();
    ResponsesRequest r = parse_responses_request(req.body, limits);
    auto out = std::make_shared<HttpEvents>(ex, r.stream);
    const engine::RequestId rid = start(std::move(r), out);
    ex->on_close([this, rid] { responder_.cancel(rid); });
  } catch (const std::exception& e) {
    metrics_.errors.inc();
    const auto [status, body] = error_body(e);
    if (!ex->closed()) ex->respond(json_response(body, status));
  }
}

void ResponsesApi::retrieve(const std::string& id, std::shared_ptr<net::HttpExchange> ex) {
  const auto r = store_.get_response(id);
  if (!r) return ex->respond(error(404, "No response found with id '" + id + "'.", "", "invalid_request_error", "not_found"));
  ex->respond(json_response(r->json));
}

void ResponsesApi::remove(const std::string& id, std::shared_ptr<net::HttpExchange> ex) {
  try {
    store_.delete_response(id);
  } catch (const store::NotFound&) {
    return ex->respond(error(404, "No response found with id '" + id + "'.", "", "invalid_request_error", "not_found"));
  }
  ex->respond(json_response({{"id", id}, {"object", "response"}, {"deleted", true}}));
}

void ResponsesApi::list_input_items(const std::string& id, const net::HttpRequest& req,
                                    std::shared_ptr<net::HttpExchange> ex) {
  const auto r = store_.get_response(id);
  if (!r) return ex->respond(error(404, "No response found with id '" + id + "'.", "", "invalid_request_error", "not_found"));
  int64_t limit = 20;
  if (auto l = query_param(req.target, "limit")) {
    try {
      limit = std::stoll(*l);
    } catch (const std::exception&) {
      limit = 0;
    }
    if (limit < 1 || limit > 100) return ex->respond(error(400, "'limit' must be from 1 to 100", "limit"));
  }
  const std::string order = query_param(req.target, "order").value_or("desc");
  if (order != "asc" && order != "desc") return ex->respond(error(400, "'order' must be asc or desc", "order"));
  std::vector<store::MessageRecord> input;
  for (auto& m : store_.history(r->session_id))
    if (m.seq >= r->input_from && m.seq < r->output_from) input.push_back(std::move(m));
  json items = input_items(id, input);
  if (order == "desc") std::reverse(items.begin(), items.end());
  size_t start = 0;
  if (auto after = query_param(req.target, "after")) {
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i]["id"] == *after) start = i + 1;
  }
  json data = json::array();
  for (size_t i = start; i < items.size() && data.size() < size_t(limit); ++i) data.push_back(items[i]);
  const bool more = start + data.size() < items.size();
  json out = {{"object", "list"}, {"data", data}};
  out["first_id"] = data.empty() ? json(nullptr) : data.front()["id"];
  out["last_id"] = data.empty() ? json(nullptr) : data.back()["id"];
  out["has_more"] = more;
  ex->respond(json_response(out));
}

}  // namespace mnemo::daemon::app
