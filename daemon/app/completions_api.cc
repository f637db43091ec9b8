#include "daemon/app/completions_api.h"

#include <spdlog/spdlog.h>

#include "daemon/app/chat_fields.h"
#include "daemon/app/event_gate.h"
#include "daemon/app/records.h"
#include "daemon/protocol/json_intake.h"
#include "daemon/protocol/limits.h"

namespace mnemo::daemon::app {

using json = protocol::Json;

namespace {

net::HttpResponse json_response(const json& j, int status = 200) {
  net::HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

net::HttpResponse error(int status, const std::string& message, const std::string& param) {
  return json_response({{"error",
                         {{"message", message},
                          {"type", "invalid_request_error"},
                          {"param", param.empty() ? json(nullptr) : json(param)},
                          {"code", nullptr}}}},
                       status);
}

const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

struct CompletionRequest {
  std::string model;
  std::vector<int32_t> prompt;
  std::string prompt_text;  // for echo
  int64_t n = 1;
  bool stream = false, echo = false, include_usage = false;
  int32_t logprobs = -1;  // the legacy integer: -1 none, else 0..5 alternatives
  ResponseSpec spec;
};

int32_t token_id(const json& v, const std::string& path, const engine::Tokenizer& tok) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tok.vocab_size())
    throw BadRequest("'" + path + "' must be token ids from 0 to " + std::to_string(tok.vocab_size() - 1), path);
  return int32_t(v.get<int64_t>());
}

CompletionRequest parse(const json& body, const engine::Tokenizer& tok) {
  if (!body.is_object()) throw BadRequest("the request body must be a JSON object");
  CompletionRequest r;
  if (const json* m = field(body, "model"); m && m->is_string()) r.model = m->get<std::string>();
  const json* p = field(body, "prompt");
  if (!p) throw BadRequest("'prompt' is required", "prompt");
  // One prompt per request: a list of one is accepted, a batch is not.
  const json* one = p;
  if (p->is_array() && !p->empty() && (p->front().is_string() || p->front().is_array())) {
    if (p->size() != 1) throw BadRequest("'prompt' must be one prompt: send a batch as separate requests", "prompt");
    one = &p->front();
  }
  if (one->is_string()) {
    r.prompt_text = one->get<std::string>();
    // Text from clients never becomes a control token, here too.
    r.prompt = tok.encode(r.prompt_text, true, false);
  } else if (one->is_array() && !one->empty()) {
    for (size_t i = 0; i < one->size(); ++i) r.prompt.push_back(token_id((*one)[i], "prompt", tok));
    r.prompt_text = tok.decode(r.prompt);
  } else {
    throw BadRequest("'prompt' must be a string or a non-empty array of token ids", "prompt");
  }
  if (r.prompt.empty()) throw BadRequest("'prompt' encodes to no tokens", "prompt");
  r.spec.raw_prompt = r.prompt;
  r.spec.tool_choice = ToolChoiceMode::None;
  auto number = [&](const char* name) -> std::optional<double> {
    const json* v = field(body, name);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw BadRequest(std::string("'") + name + "' must be a number", name);
    return v->get<double>();
  };
  auto& sm = r.spec.sampling;
  sm.temperature = number("temperature");
  if (sm.temperature && (*sm.temperature < 0 || *sm.temperature > 2))
    throw BadRequest("'temperature' must be between 0 and 2", "temperature");
  sm.top_p = number("top_p");
  if (sm.top_p && (*sm.top_p <= 0 || *sm.top_p > 1)) throw BadRequest("'top_p' must be in (0, 1]", "top_p");
  // OpenAI's default for this endpoint is 16 tokens.
  sm.max_tokens = 16;
  if (const json* mt = field(body, "max_tokens")) {
    if (!mt->is_number_integer() || mt->get<int64_t>() < 1 || mt->get<int64_t>() > protocol::kMaxTokensLimit)
      throw BadRequest("'max_tokens' must be an integer from 1 to " + std::to_string(protocol::kMaxTokensLimit),
                       "max_tokens");
    sm.max_tokens = mt->get<int64_t>();
  }
  if (const json* s = field(body, "seed")) {
    if (!s->is_number_integer()) throw BadRequest("'seed' must be an integer", "seed");
    sm.seed = s->get<uint64_t>();
  }
  if (const json* stop = field(body, "stop")) {
    std::vector<std::string> stops;
    if (stop->is_string()) stops.push_back(stop->get<std::string>());
    else if (stop->is_array() && stop->size() <= protocol::kMaxStopStrings)
      for (const auto& s : *stop) {
        if (!s.is_string()) throw BadRequest("'stop' must be a string or an array of strings", "stop");
        stops.push_back(s.get<std::string>());
      }
    else throw BadRequest("'stop' must be a string or an array of at most 16 strings", "stop");
    for (const auto& s : stops)
      if (s.empty() || s.size() > protocol::kMaxStopBytes)
        throw BadRequest("each 'stop' string must be 1 to 256 bytes", "stop");
    sm.stop = stops;
  }
  if (const json* n = field(body, "n")) {
    if (!n->is_number_integer() || n->get<int64_t>() < 1 || n->get<int64_t>() > 8)
      throw BadRequest("'n' must be an integer from 1 to 8", "n");
    r.n = n->get<int64_t>();
  }
  if (const json* b = field(body, "best_of"); b && !(b->is_number_integer() && b->get<int64_t>() == r.n))
    throw BadRequest("'best_of' other than n is not supported", "best_of");
  if (const json* s = field(body, "suffix"); s && !(s->is_string() && s->get<std::string>().empty()))
    throw BadRequest("'suffix' is not supported", "suffix");
  auto flag = [&](const char* name) {
    const json* v = field(body, name);
    if (!v) return false;
    if (!v->is_boolean()) throw BadRequest(std::string("'") + name + "' must be a boolean", name);
    return v->get<bool>();
  };
  r.stream = flag("stream");
  r.echo = flag("echo");
  if (const json* so = field(body, "stream_options"); so && so->is_object()) r.include_usage = so->value("include_usage", false);
  json rest = body;
  if (const json* lp = field(body, "logprobs")) {
    if (!lp->is_number_integer() || lp->get<int64_t>() < 0 || lp->get<int64_t>() > 5)
      throw BadRequest("'logprobs' must be an integer from 0 to 5", "logprobs");
    r.logprobs = int32_t(lp->get<int64_t>());
    if (r.echo) throw BadRequest("'echo' with 'logprobs' (the prompt's logprobs) is not supported", "echo");
    rest.erase("logprobs");
  }
  rest.erase("top_logprobs");
  parse_token_sampling(rest, r.spec.token_sampling);
  if (r.logprobs >= 0) {
    r.spec.token_sampling.logprobs = true;
    r.spec.token_sampling.top_logprobs = r.logprobs;
  }
  return r;
}

std::string text_of(const std::string& bytes) { return json(bytes).dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

// One answer: its n choices collected into one text_completion, or streamed.
class CompletionsApi::Answer : public std::enable_shared_from_this<CompletionsApi::Answer> {
 public:
  Answer(CompletionsApi& api, std::shared_ptr<net::HttpExchange> ex, const CompletionRequest& r)
      : api_(api), ex_(std::move(ex)), stream_(r.stream), include_usage_(r.include_usage), echo_(r.echo),
        logprobs_(r.logprobs), prompt_text_(r.prompt_text), prompt_tokens_(int64_t(r.prompt.size())),
        model_(r.model.empty() ? api.model_name_ : r.model), id_(make_id("cmpl-")), created_(now_ms() / 1000),
        choices_(size_t(r.n)) {}

  std::vector<std::shared_ptr<ResponseSink>> sinks() {
    std::vector<std::shared_ptr<ResponseSink>> out;
    for (size_t i = 0; i < choices_.size(); ++i) out.push_back(std::make_shared<Choice>(shared_from_this(), i));
    return out;
  }

  void open() {
    gate_.open([this] {
      if (!stream_) return;
      ex_->begin_stream(200, "text/event-stream");
      if (echo_)
        for (size_t i = 0; i < choices_.size(); ++i) write(chunk(i, prompt_text_, nullptr));
    });
  }

 private:
  class Choice : public ResponseSink {
   public:
    Choice(std::shared_ptr<Answer> a, size_t i) : a_(std::move(a)), i_(i) {}
    void on_logprob(const GeneratedLogprob& lp) override {
      a_->gate_.run([a = a_, i = i_, lp] { a->logprob(i, lp); });
    }
    void on_delta(const std::string& text) override {
      a_->gate_.run([a = a_, i = i_, text] { a->delta(i, text); });
    }
    void on_tool_call(const engine::ToolCall&) override {}
    void on_done(const ResponseOutcome& o) override {
      a_->gate_.run([a = a_, i = i_, o] { a->done(i, o); });
    }

   private:
    std::shared_ptr<Answer> a_;
    size_t i_;
  };

  struct State {
    std::string text;
    json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
    size_t sent = 0;  // logprob entries already streamed
    std::optional<ResponseOutcome> outcome;
  };

  void logprob(size_t i, const GeneratedLogprob& lp) {
    State& s = choices_[i];
    const size_t offset = (echo_ ? prompt_text_.size() : 0) + s.text.size() + pending_bytes(s);
    s.tokens.push_back(json::parse(text_of(lp.chosen.bytes)));
    s.token_logprobs.push_back(lp.chosen.logprob);
    json top = json::object();
    for (const auto& t : lp.top) top[json::parse(text_of(t.bytes)).get<std::string>()] = t.logprob;
    s.top.push_back(std::move(top));
    s.offsets.push_back(offset);
  }
  // Bytes of logged tokens whose text has not reached on_delta yet.
  size_t pending_bytes(const State& s) const {
    size_t logged = 0;
    for (const auto& t : s.tokens) logged += t.get_ref<const std::string&>().size();
    return logged > s.text.size() ? logged - s.text.size() : 0;
  }

  void delta(size_t i, const std::string& text) {
    State& s = choices_[i];
    s.text += text;
    if (stream_) write(chunk(i, text, nullptr));
  }

  void done(size_t i, const ResponseOutcome& o) {
    api_.metrics_.record(o);
    choices_[i].outcome = o;
    if (o.finish_reason == "error") failed_ = o.error;
    if (stream_ && !failed_) write(chunk(i, "", finish(o)));
    if (++finished_ < choices_.size()) return;
    if (failed_) {
      const std::string err = json({{"error", {{"message", *failed_}, {"type", "server_error"}, {"param", nullptr}, {"code", nullptr}}}}).dump();
      if (stream_) {
        write("data: " + err + "\n\n");
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
      if (include_usage_) {
        json u = base();
        u["choices"] = json::array();
        u["usage"] = usage();
        write(u);
      }
      ex_->write("data: [DONE]\n\n");
      ex_->end();
      return;
    }
    json out = base();
    out["choices"] = json::array();
    for (size_t k = 0; k < choices_.size(); ++k) {
      const State& s = choices_[k];
      out["choices"].push_back({{"text", (echo_ ? prompt_text_ : "") + s.text},
                                {"index", k},
                                {"logprobs", logprobs_json(s, 0)},
                                {"finish_reason", finish(*s.outcome)}});
    }
    out["usage"] = usage();
    ex_->respond(json_response(out));
  }

  json logprobs_json(const State& s, size_t from) const {
    if (logprobs_ < 0) return nullptr;
    auto slice = [&](const json& a) {
      json o = json::array();
      for (size_t k = from; k < a.size(); ++k) o.push_back(a[k]);
      return o;
    };
    return {{"tokens", slice(s.tokens)}, {"token_logprobs", slice(s.token_logprobs)}, {"top_logprobs", slice(s.top)},
            {"text_offset", slice(s.offsets)}};
  }

  static std::string finish(const ResponseOutcome& o) { return o.finish_reason == "length" ? "length" : "stop"; }

  json usage() const {
    int64_t completion = 0, cached = 0;
    for (const auto& s : choices_)
      if (s.outcome) completion += s.outcome->completion_tokens;
    if (choices_[0].outcome) cached = choices_[0].outcome->cached_tokens;
    return {{"prompt_tokens", prompt_tokens_},
            {"completion_tokens", completion},
            {"total_tokens", prompt_tokens_ + completion},
            {"prompt_tokens_details", {{"cached_tokens", cached}}}};
  }

  json base() const {
    return {{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", model_}};
  }
  json chunk(size_t i, const std::string& text, const json& finish_reason) {
    State& s = choices_[i];
    json c = base();
    c["choices"] = json::array({{{"text", text}, {"index", i}, {"logprobs", logprobs_json(s, s.sent)},
                                 {"finish_reason", finish_reason}}});
    s.sent = s.tokens.size();
    return c;
  }
  void write(const json& j) { ex_->write("data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"); }
  void write(const std::string& raw) { ex_->write(raw); }

  CompletionsApi& api_;
  std::shared_ptr<net::HttpExchange> ex_;
  bool stream_, include_usage_, echo_;
  int32_t logprobs_;
  std::string prompt_text_;
  int64_t prompt_tokens_;
  std::string model_, id_;
  int64_t created_;
  std::vector<State> choices_;
  size_t finished_ = 0;
  std::optional<std::string> failed_;
  EventGate gate_;
};

CompletionsApi::CompletionsApi(std::string model_name, const engine::Tokenizer& tok, Responder& responder,
                               WorkerPool& pool, AppMetrics& metrics)
    : model_name_(std::move(model_name)), tok_(tok), responder_(responder), pool_(pool), metrics_(metrics) {}

void CompletionsApi::handle(const net::HttpRequest& req, std::shared_ptr<net::HttpExchange> ex) {
  if (req.method != "POST") return ex->respond(error(405, "use POST for /v1/completions", ""));
  // Tokenizing may take a while: off the network thread.
  pool_.post([this, req, ex] { complete(req, ex); });
}

void CompletionsApi::complete(const net::HttpRequest& req, std::shared_ptr<net::HttpExchange> ex) {
  try {
    protocol::IntakeLimits limits;
    limits.max_bytes = req.body.size();
    const CompletionRequest r = parse(protocol::parse_client_json(req.body, limits), tok_);
    auto answer = std::make_shared<Answer>(*this, ex, r);
    auto group = responder_.start(r.spec, answer->sinks());
    answer->open();
    ex->on_close([group] { group->cancel(); });
  } catch (const protocol::IntakeError& e) {
    metrics_.errors.inc();
    if (!ex->closed()) ex->respond(error(400, e.what(), ""));
  } catch (const BadRequest& e) {
    metrics_.errors.inc();
    if (!ex->closed()) ex->respond(error(400, e.what(), e.field()));
  } catch (const std::exception& e) {
    metrics_.errors.inc();
    spdlog::error("POST /v1/completions failed: {}", e.what());
    if (!ex->closed()) ex->respond(error(500, "internal error", ""));
  }
}

}  // namespace mnemo::daemon::app
