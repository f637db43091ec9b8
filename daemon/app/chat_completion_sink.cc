#include "daemon/app/chat_completion_sink.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "daemon/app/records.h"
#include "daemon/app/storage_errors.h"
#include "daemon/net/error_body.h"

namespace mnemo::daemon::app {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

std::string dump(const ordered_json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse(const ordered_json& j) { return "data: " + dump(j) + "\n\n"; }

ordered_json tool_call_json(const engine::ToolCall& c) {
  return {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
}

// OpenAI's shape for one token: its text, logprob and UTF-8 bytes. A token
// that splits a character shows U+FFFD in `token` (JSON needs valid UTF-8);
// `bytes` keeps what it really is. -inf (a banned token among the
// alternatives) is OpenAI's -9999.0: JSON has no infinity.
ordered_json token_json(const TokenProb& t) {
  ordered_json bytes = ordered_json::array();
  for (unsigned char c : t.bytes) bytes.push_back(int(c));
  return {{"token", t.bytes}, {"logprob", std::isfinite(t.logprob) ? double(t.logprob) : -9999.0}, {"bytes", bytes}};
}

}  // namespace

class HttpApi::Sink::Choice : public ResponseSink {
 public:
  Choice(std::shared_ptr<Sink> sink, size_t index) : sink_(std::move(sink)), index_(index) {}
  void on_delta(const std::string& text) override { sink_->on_delta(index_, text); }
  void on_tool_call(const engine::ToolCall& call) override { sink_->on_tool_call(index_, call); }
  void on_logprob(const GeneratedLogprob& lp) override { sink_->on_logprob(index_, lp); }
  void on_done(const ResponseOutcome& o) override { sink_->on_done(index_, o); }

 private:
  std::shared_ptr<Sink> sink_;
  size_t index_;
};

HttpApi::Sink::Sink(HttpApi& api, std::shared_ptr<net::HttpExchange> ex, const ChatCompletionRequest& r,
                    std::optional<int64_t> turn, std::string program_id)
    : api_(api), ex_(std::move(ex)), stream_(r.stream), include_usage_(r.include_usage),
      logprobs_(r.spec.token_sampling.logprobs), legacy_(r.legacy_functions),
      model_(r.model.empty() ? api.model_name_ : r.model), turn_(turn), program_id_(std::move(program_id)),
      last_step_(r.program.is_last_step), choices_(size_t(r.n)) {
  id_ = make_id("chatcmpl-");
  created_ = now_ms() / 1000;
}

std::vector<std::shared_ptr<ResponseSink>> HttpApi::Sink::choices() {
  std::vector<std::shared_ptr<ResponseSink>> out;
  for (size_t i = 0; i < choices_.size(); ++i) out.push_back(std::make_shared<Choice>(shared_from_this(), i));
  return out;
}

void HttpApi::Sink::open() {
  gate_.open([this] {
    if (!stream_) return;
    ex_->begin_stream(200, "text/event-stream");
    for (size_t i = 0; i < choices_.size(); ++i) ex_->write(sse(chunk(i, {{"role", "assistant"}, {"content", ""}}, nullptr)));
  });
}

void HttpApi::Sink::on_delta(size_t i, const std::string& text) {
  gate_.run([=, this] {
    if (stream_ && !failed_) ex_->write(sse(chunk(i, {{"content", text}}, nullptr)));
  });
}

void HttpApi::Sink::on_tool_call(size_t i, const engine::ToolCall& call) {
  gate_.run([=, this] {
    if (!stream_ || failed_) return;
    State& s = choices_[i];
    if (legacy_) {
      // The legacy shape has room for one call.
      if (s.calls++ == 0)
        ex_->write(sse(chunk(i, {{"function_call", {{"name", call.name}, {"arguments", call.arguments}}}}, nullptr)));
      return;
    }
    ordered_json tc = tool_call_json(call);
    tc["index"] = s.calls++;
    ex_->write(sse(chunk(i, {{"tool_calls", ordered_json::array({tc})}}, nullptr)));
  });
}

void HttpApi::Sink::on_logprob(size_t i, const GeneratedLogprob& lp) {
  ordered_json entry = token_json(lp.chosen);
  entry["top_logprobs"] = ordered_json::array();
  for (const auto& t : lp.top) entry["top_logprobs"].push_back(token_json(t));
  gate_.run([this, i, entry = std::move(entry)]() mutable { choices_[i].logprobs.push_back(std::move(entry)); });
}

void HttpApi::Sink::on_done(size_t i, const ResponseOutcome& o) {
  gate_.run([=, this] {
    api_.metrics_.record(o);
    spdlog::info("completion {} choice {}: {} ({} prompt tokens, {} cached, {} generated)", id_, i, o.finish_reason,
                 o.prompt_tokens, o.cached_tokens, o.completion_tokens);
    choices_[i].outcome = o;
    if (o.finish_reason == "error") {
      api_.metrics_.errors.inc();
      if (stream_) fail(o.error);
    } else if (stream_ && !failed_) {
      ex_->write(sse(chunk(i, ordered_json::object(), finish_reason(o))));
    }
    if (++done_ == choices_.size()) finish();
  });
}

void HttpApi::Sink::fail(const std::string& error) {
  if (failed_) return;
  failed_ = true;
  ex_->write("data: " + net::openai_error_json(error, "server_error", "") + "\n\n");
  ex_->write("data: [DONE]\n\n");
  ex_->end();
}

void HttpApi::Sink::finish() {
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
  if (failed_) return;
  // As OpenAI counts n choices: the prompt once, every choice's completion.
  // cached_tokens is the first choice's (the others reuse its prompt; the
  // metrics count theirs).
  const ResponseOutcome& first = *choices_[0].outcome;
  int64_t completion = 0;
  for (const State& s : choices_) completion += s.outcome->completion_tokens;
  const ordered_json usage = {{"prompt_tokens", first.prompt_tokens},
                              {"completion_tokens", completion},
                              {"total_tokens", first.prompt_tokens + completion},
                              {"prompt_tokens_details", {{"cached_tokens", first.cached_tokens}}}};
  if (stream_) {
    if (include_usage_) {
      ordered_json u = base();
      u["choices"] = ordered_json::array();
      u["usage"] = usage;
      ex_->write(sse(u));
    }
    ex_->write("data: [DONE]\n\n");
    ex_->end();
    return;
  }
  for (const State& s : choices_)
    if (s.outcome->finish_reason == "error") {
      net::HttpResponse r;
      r.status = 500;
      r.body = net::openai_error_json(s.outcome->error, "server_error", "");
      ex_->respond(std::move(r));
      return;
    }
  ordered_json out = base();
  out["object"] = "chat.completion";
  out["choices"] = ordered_json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    State& s = choices_[i];
    out["choices"].push_back({{"index", i},
                              {"message", message(*s.outcome)},
                              {"logprobs", logprobs_json(s.logprobs)},
                              {"finish_reason", finish_reason(*s.outcome)}});
  }
  out["usage"] = usage;
  net::HttpResponse r;
  r.body = dump(out);
  ex_->respond(std::move(r));
}

ordered_json HttpApi::Sink::message(const ResponseOutcome& o) const {
  ordered_json msg = {{"role", "assistant"}};
  msg["content"] = o.content.empty() && !o.tool_calls.empty() ? ordered_json(nullptr) : ordered_json(o.content);
  if (o.tool_calls.empty()) return msg;
  if (legacy_) {
    msg["function_call"] = {{"name", o.tool_calls[0].name}, {"arguments", o.tool_calls[0].arguments}};
    return msg;
  }
  msg["tool_calls"] = ordered_json::array();
  for (const auto& c : o.tool_calls) msg["tool_calls"].push_back(tool_call_json(c));
  return msg;
}

std::string HttpApi::Sink::finish_reason(const ResponseOutcome& o) const {
  const std::string& r = o.finish_reason;
  if (r == "tool_calls") return legacy_ ? "function_call" : r;
  if (r == "stop" || r == "length") return r;
  return "stop";  // cancelled and shutdown have no OpenAI name
}

ordered_json HttpApi::Sink::logprobs_json(ordered_json& entries) const {
  if (!logprobs_) return nullptr;
  ordered_json out = {{"content", std::move(entries)}, {"refusal", nullptr}};
  entries = ordered_json::array();
  return out;
}

ordered_json HttpApi::Sink::base() const {
  return {{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_}, {"model", model_}};
}

ordered_json HttpApi::Sink::chunk(size_t i, ordered_json delta, const ordered_json& finish) {
  ordered_json c = base();
  // A chunk with no logprobs to deliver says null, as OpenAI's do.
  ordered_json lp = choices_[i].logprobs.empty() ? ordered_json(nullptr) : logprobs_json(choices_[i].logprobs);
  c["choices"] = ordered_json::array(
      {{{"index", i}, {"delta", std::move(delta)}, {"logprobs", std::move(lp)}, {"finish_reason", finish}}});
  return c;
}

}  // namespace mnemo::daemon::app
