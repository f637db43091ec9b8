#include "daemon/app/http_api.h"

#include "daemon/app/responses_api.h"
#include "daemon/app/server_tools.h"

#include <spdlog/spdlog.h>

#include "daemon/app/event_gate.h"
#include "daemon/app/records.h"
#include "daemon/app/storage_errors.h"
#include "daemon/net/error_body.h"

namespace mnemo::daemon::app {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

net::HttpResponse json_response(const ordered_json& j, int status = 200) {
  net::HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

std::string sse(const ordered_json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

ordered_json tool_call_json(const engine::ToolCall& c) {
  return {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
}

ordered_json usage_json(const ResponseOutcome& o) {
  return {{"prompt_tokens", o.prompt_tokens},
          {"completion_tokens", o.completion_tokens},
          {"total_tokens", o.prompt_tokens + o.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", o.cached_tokens}}}};
}

std::string openai_finish(const std::string& r) {
  if (r == "stop" || r == "length" || r == "tool_calls") return r;
  return "stop";  // cancelled and shutdown have no OpenAI name
}

}  // namespace

// One completion: accumulates (plain) or streams SSE chunks.
class HttpApi::Sink : public ResponseSink {
 public:
  Sink(HttpApi& api, std::shared_ptr<net::HttpExchange> ex, bool stream, bool include_usage, std::string model,
       std::optional<int64_t> turn, std::string program_id, bool last_step)
      : api_(api), ex_(std::move(ex)), stream_(stream), include_usage_(include_usage), model_(std::move(model)),
        turn_(turn), program_id_(std::move(program_id)), last_step_(last_step) {
    id_ = make_id("chatcmpl-");
    created_ = now_ms() / 1000;
  }

  // Once the request is accepted: the stream's head, then what waited.
  void open() {
    gate_.open([this] {
      if (!stream_) return;
      ex_->begin_stream(200, "text/event-stream");
      ex_->write(sse(chunk({{"role", "assistant"}, {"content", ""}}, nullptr)));
    });
  }

  void on_delta(const std::string& text) override {
    gate_.run([=, this] {
      if (stream_) ex_->write(sse(chunk({{"content", text}}, nullptr)));
    });
  }
  void on_tool_call(const engine::ToolCall& call) override {
    gate_.run([=, this] {
      if (!stream_) return;
      ordered_json tc = tool_call_json(call);
      tc["index"] = calls_++;
      ex_->write(sse(chunk({{"tool_calls", ordered_json::array({tc})}}, nullptr)));
    });
  }
  void on_done(const ResponseOutcome& o) override {
    gate_.run([=, this] { done(o); });
  }

 private:
  void done(const ResponseOutcome& o) {
    api_.metrics_.record(o);
    // Bookkeeping only (Continuum's timings): a store that cannot take it
    // (full disk, I/O error) must not keep the completion from the client.
    try {
      if (turn_) api_.store_.end_turn(*turn_, now_ms());
      if (last_step_ && !program_id_.empty()) api_.store_.end_program(program_id_, now_ms());
    } catch (const store::StorageFailure& e) {
      spdlog::warn("completion {}: program bookkeeping not saved (store {}): {}", id_, store::to_string(e.fault()),
                   e.what());
    } catch (const std::exception& e) {
      spdlog::warn("completion {}: program bookkeeping failed: {}", id_, e.what());
    }
    spdlog::info("completion {}: {} ({} prompt tokens, {} cached, {} generated)", id_, o.finish_reason, o.prompt_tokens,
                 o.cached_tokens, o.completion_tokens);
    if (o.finish_reason == "error") {
      api_.metrics_.errors.inc();
      const std::string err = net::openai_error_json(o.error, "server_error", "");
      if (stream_) {
        ex_->write("data: " + err + "\n\n");
        ex_->write("data: [DONE]\n\n");
        ex_->end();
      } else {
        net::HttpResponse r;
        r.status = 500;
        r.body = err;
        ex_->respond(std::move(r));
      }
      return;
    }
    if (stream_) {
      ex_->write(sse(chunk(ordered_json::object(), openai_finish(o.finish_reason))));
      if (include_usage_) {
        ordered_json u = base();
        u["choices"] = ordered_json::array();
        u["usage"] = usage_json(o);
        ex_->write(sse(u));
      }
      ex_->write("data: [DONE]\n\n");
      ex_->end();
      return;
    }
    ordered_json msg = {{"role", "assistant"}};
    msg["content"] = o.content.empty() && !o.tool_calls.empty() ? ordered_json(nullptr) : ordered_json(o.content);
    if (!o.tool_calls.empty()) {
      msg["tool_calls"] = ordered_json::array();
      for (const auto& c : o.tool_calls) msg["tool_calls"].push_back(tool_call_json(c));
    }
    ordered_json out = base();
    out["object"] = "chat.completion";
    out["choices"] = ordered_json::array(
        {{{"index", 0}, {"message", msg}, {"logprobs", nullptr}, {"finish_reason", openai_finish(o.finish_reason)}}});
    out["usage"] = usage_json(o);
    ex_->respond(json_response(out));
  }

  ordered_json base() const {
    return {{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_}, {"model", model_}};
  }
  ordered_json chunk(ordered_json delta, const ordered_json& finish) const {
    ordered_json c = base();
    c["choices"] = ordered_json::array({{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr},
                                         {"finish_reason", finish}}});
    return c;
  }

  HttpApi& api_;
  std::shared_ptr<net::HttpExchange> ex_;
  bool stream_, include_usage_;
  std::string model_, id_;
  int64_t created_ = 0;
  int calls_ = 0;
  std::optional<int64_t> turn_;
  std::string program_id_;
  bool last_step_;
  EventGate gate_;
};

HttpApi::HttpApi(std::string model_name, store::Store& store, Responder& responder, WorkerPool& pool,
                 AppMetrics& metrics)
    : model_name_(std::move(model_name)), store_(store), responder_(responder), pool_(pool), metrics_(metrics),
      started_(now_ms() / 1000) {}

void HttpApi::handle(const net::HttpRequest& req, std::shared_ptr<net::HttpExchange> ex) {
  const std::string path = req.path();
  metrics_.requests.labels({path == "/v1/chat/completions" ? "chat_completions"
                            : path.starts_with("/v1/responses") ? "responses"
                                                                 : "http_other"}).inc();
  if (path == "/healthz") {
    ex->respond(json_response({{"status", stopping_ ? "stopping" : "ok"}}, stopping_ ? 503 : 200));
  } else if (path == "/metrics") {
    net::HttpResponse r;
    r.content_type = metrics::kContentType;
    r.body = metrics_.registry.render();
    ex->respond(std::move(r));
  } else if (path == "/v1/models") {
    ex->respond(json_response(
        {{"object", "list"},
         {"data", ordered_json::array({{{"id", model_name_}, {"object", "model"}, {"created", started_}, {"owned_by", "mnemo"}}})}}));
  } else if (responses_ && (path == "/v1/responses" || path.starts_with("/v1/responses/"))) {
    responses_->handle(req, ex);
  } else if (path == "/v1/tools") {
    // The OpenAI Responses API's function-tool shape, plus where each comes from.
    auto data = ordered_json::array();
    if (tools_)
      for (const auto& t : tools_->listing())
        data.push_back({{"type", "function"},
                        {"name", t["name"]},
                        {"description", t["description"]},
                        {"parameters", t["parameters"]},
                        {"provider", t["provider"]},
                        {"kind", t["kind"]}});
    ex->respond(json_response({{"object", "list"}, {"data", std::move(data)}}));
  } else if (path == "/v1/chat/completions") {
    if (req.method != "POST") {
      ex->respond(net::error_response(405, "use POST for /v1/chat/completions", "invalid_request_error", "method_not_allowed"));
      return;
    }
    if (stopping_) {
      ex->respond(net::error_response(503, "the daemon is stopping", "server_error", "shutting_down"));
      return;
    }
    // Rendering and tokenizing may take a while: off the network thread.
    pool_.post([this, req, ex] { chat_completions(req, ex); });
  } else {
    ex->respond(net::error_response(404, "no route " + req.method + " " + path, "invalid_request_error", "not_found"));
  }
}

std::optional<int64_t> HttpApi::record_turn(const ProgramInfo& p, std::string& program_id) {
  if (!p.job_id) return std::nullopt;
  auto prog = store_.find_program_by_job(*p.job_id);
  if (!prog || prog->ended_at) {
    store::ProgramRecord r;
    r.id = make_id("prog_");
    r.job_id = p.job_id;
    r.started_at = now_ms();
    store_.begin_program(r);
    prog = r;
  }
  program_id = prog->id;
  store::TurnRecord t;
  t.program_id = prog->id;
  t.job_id = p.job_id;
  t.is_last_step = p.is_last_step;
  t.this_func_call = p.this_func_call;
  t.last_func_call = p.last_func_call;
  t.started_at = now_ms();
  return store_.record_turn(t);
}

void HttpApi::chat_completions(const net::HttpRequest& req, std::shared_ptr<net::HttpExchange> ex) {
  try {
    // The net layer bounded the body's bytes (--max-body-bytes); the intake
    // bounds its shape before anything parses or walks it.
    protocol::IntakeLimits limits;
    limits.max_bytes = req.body.size();
    ChatCompletionRequest r = parse_chat_completion(req.body, limits);
    // Continuum's fields name the program; without them it is inferred.
    if (r.program.job_id) {
      r.spec.program.key = "job:" + *r.program.job_id;
      r.spec.program.last_step = r.program.is_last_step;
      r.spec.program.this_func_call = r.program.this_func_call;
    }
    std::string program_id;
    const std::optional<int64_t> turn = record_turn(r.program, program_id);
    auto sink = std::make_shared<Sink>(*this, ex, r.stream, r.include_usage, r.model.empty() ? model_name_ : r.model,
                                       turn, program_id, r.program.is_last_step);
    const engine::RequestId id = responder_.start(r.spec, sink);
    sink->open();
    // A client that hangs up stops the generation.
    ex->on_close([this, id] { responder_.cancel(id); });
  } catch (const protocol::IntakeError& e) {
    metrics_.errors.inc();
    spdlog::info("chat completion refused: {}", e.what());
    if (!ex->closed()) ex->respond(net::error_response(400, e.what(), "invalid_request_error", "invalid_json"));
  } catch (const nlohmann::json::exception& e) {
    // A field of a type the parser did not expect deeper down.
    metrics_.errors.inc();
    if (!ex->closed())
      ex->respond(net::error_response(400, "bad request body: " + protocol::json_error_message(e)));
  } catch (const store::StorageFailure& e) {
    // Recording the turn (job_id given) failed: 507 for a full disk, 503 else.
    metrics_.errors.inc();
    spdlog::error("chat completion refused: store {}: {}", store::to_string(e.fault()), e.what());
    if (!ex->closed())
      ex->respond(net::error_response(http_status_for(e), storage_message(e, "nothing was saved"), "server_error",
                                      protocol::to_string(error_code_for(e))));
  } catch (const BadRequest& e) {
    metrics_.errors.inc();
    net::HttpResponse resp = net::error_response(400, e.what(), "invalid_request_error", "invalid_request");
    // OpenAI's error object names the offending parameter.
    json j = json::parse(resp.body, nullptr, false);
    if (j.is_object() && j.contains("error")) j["error"]["param"] = e.field().empty() ? json(nullptr) : json(e.field());
    resp.body = j.dump();
    if (ex->closed()) return;
    ex->respond(std::move(resp));
  } catch (const std::exception& e) {
    // Nothing may leave a client waiting for an answer that never comes.
    metrics_.errors.inc();
    spdlog::error("chat completion failed: {}", e.what());
    if (!ex->closed()) ex->respond(net::error_response(500, "internal error", "server_error", "internal"));
  }
}

}  // namespace mnemo::daemon::app
