#include "daemon/app/http_api.h"

#include "daemon/app/chat_completion_sink.h"

#include "daemon/app/completions_api.h"
#include "daemon/app/embeddings_api.h"
#include "daemon/app/responses_api.h"
#include "daemon/app/server_tools.h"

#include <spdlog/spdlog.h>

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

}  // namespace

HttpApi::HttpApi(std::string model_name, store::Store& store, Responder& responder, WorkerPool& pool,
                 AppMetrics& metrics)
    : model_name_(std::move(model_name)), store_(store), responder_(responder), pool_(pool), metrics_(metrics),
      started_(now_ms() / 1000) {}

void HttpApi::handle(const net::HttpRequest& req, std::shared_ptr<net::HttpExchange> ex) {
  const std::string path = req.path();
  metrics_.requests.labels({path == "/v1/chat/completions" ? "chat_completions"
                            : path.starts_with("/v1/responses") ? "responses"
                            : path == "/v1/embeddings"          ? "embeddings"
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
  } else if (path.starts_with("/v1/models/")) {
    const std::string id = path.substr(11);
    if (id == model_name_)
      ex->respond(json_response({{"id", model_name_}, {"object", "model"}, {"created", started_}, {"owned_by", "mnemo"}}));
    else
      ex->respond(net::error_response(404, "The model '" + id + "' does not exist", "invalid_request_error",
                                      "model_not_found"));
  } else if (completions_ && path == "/v1/completions") {
    if (stopping_) return ex->respond(net::error_response(503, "the daemon is stopping", "server_error", "shutting_down"));
    completions_->handle(req, ex);
  } else if (embeddings_ && path == "/v1/embeddings") {
    if (stopping_) return ex->respond(net::error_response(503, "the daemon is stopping", "server_error", "shutting_down"));
    embeddings_->handle(req, ex);
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
    auto sink = std::make_shared<Sink>(*this, ex, r, turn, program_id);
    const std::shared_ptr<ChoiceGroup> choices = responder_.start(r.spec, sink->choices());
    sink->open();
    // A client that hangs up stops the generation.
    ex->on_close([choices] { choices->cancel(); });
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
