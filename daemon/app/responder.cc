#include "daemon/app/responder.h"

#include <spdlog/spdlog.h>

#include <random>

#include "engine/constrain/tool_call_constraint.h"
#include "engine/tokenizer/error.h"

namespace mnemo::daemon::app {

struct Responder::Running {
  engine::RequestHandle handle;
  std::shared_ptr<ResponseSink> sink;
  std::optional<engine::ToolCallParser> parser;
  std::shared_ptr<SerialQueue> queue;
  ResponseOutcome outcome;
  bool done = false;
};

Responder::Responder(engine::Engine& engine, const engine::Model& model, const engine::Tokenizer& tok,
                     engine::ChatTemplate tmpl, WorkerPool& pool)
    : engine_(engine),
      model_(model),
      tok_(tok),
      tmpl_(std::move(tmpl)),
      family_(tmpl_.family()),
      syntax_(engine::tool_call_syntax_for_family(family_)),
      vocab_(engine::TokenTrie::build(tok)),
      pool_(pool) {
  for (const std::string& s : tmpl_.stop_tokens())
    if (auto id = tok_.token_id(s)) stop_ids_.push_back(*id);
  for (int32_t id = 0; id < tok_.vocab_size(); ++id)
    if (tok_.is_added(id) && tok_.is_special(id) && !tok_.id_to_token(id).empty())
      special_texts_.push_back(tok_.id_to_token(id));
  for (const std::string& t : special_texts_)
    if (special_first_bytes_.find(t[0]) == std::string::npos) special_first_bytes_ += t[0];
}

namespace {
// Marks a message's content in the rendered text; control bytes no template
// or tokenizer produces on its own.
std::string placeholder(size_t i) { return "\x02mnemo-content-" + std::to_string(i) + "\x03"; }
}  // namespace

bool Responder::holds_special_text(std::string_view text) const {
  for (size_t at = text.find_first_of(special_first_bytes_); at != std::string_view::npos;
       at = text.find_first_of(special_first_bytes_, at + 1))
    for (const std::string& t : special_texts_)
      if (text.substr(at, t.size()) == t) return true;
  return false;
}

std::vector<int32_t> Responder::prompt(const ResponseSpec& spec) const {
  // Tools stay in the prompt under tool_choice "none" too: the model still
  // knows them (as in OpenAI's API), and the prompt keeps the same prefix as
  // the turns around it, so the prefix cache still hits.
  static const nlohmann::ordered_json no_tools = nlohmann::ordered_json::array();
  const nlohmann::ordered_json& tools = !spec.tools.empty() && syntax_.has_value() ? spec.tools : no_tools;
  // Contents holding special-token text are swapped for placeholders while
  // rendering, then tokenized as plain text; the rest of the rendered text
  // (the template's markers, BOS included) keeps its special tokens.
  std::vector<engine::ChatMessage> messages = spec.messages;
  std::vector<std::string> held;
  for (auto& m : messages) {
    if (!holds_special_text(m.content)) continue;
    held.push_back(std::move(m.content));
    m.content = placeholder(held.size() - 1);
  }
  std::string text;
  try {
    text = tmpl_.render(messages, tools, true);
  } catch (const engine::TokenizerError& e) {
    throw BadRequest(std::string("the conversation cannot be rendered: ") + e.what(), "messages");
  }
  if (held.empty()) return tok_.encode(text, false);
  // A template that escapes or rewrites a content (tool results embedded in
  // JSON, say) loses the placeholder: render the original text then.
  for (size_t i = 0, pos = 0; i < held.size(); ++i) {
    pos = text.find(placeholder(i), pos);
    if (pos == std::string::npos) return tok_.encode(tmpl_.render(spec.messages, tools, true), false);
  }
  std::vector<int32_t> ids;
  size_t pos = 0;
  for (size_t i = 0; i < held.size(); ++i) {
    const std::string mark = placeholder(i);
    const size_t at = text.find(mark, pos);
    const auto head = tok_.encode(std::string_view(text).substr(pos, at - pos), false);
    const auto body = tok_.encode(held[i], false, /*match_special_text=*/false);
    ids.insert(ids.end(), head.begin(), head.end());
    ids.insert(ids.end(), body.begin(), body.end());
    pos = at + mark.size();
  }
  const auto tail = tok_.encode(std::string_view(text).substr(pos), false);
  ids.insert(ids.end(), tail.begin(), tail.end());
  return ids;
}

namespace {

engine::SamplingParams sampling_params(const protocol::Sampling& s) {
  engine::SamplingParams p;
  p.temperature = float(s.temperature.value_or(protocol::kDefaultTemperature));
  p.top_p = float(s.top_p.value_or(protocol::kDefaultTopP));
  p.top_k = int32_t(s.top_k.value_or(protocol::kDefaultTopK));
  p.min_p = float(s.min_p.value_or(protocol::kDefaultMinP));
  p.repetition_penalty = float(s.repetition_penalty.value_or(protocol::kDefaultRepetitionPenalty));
  p.seed = s.seed ? *s.seed : std::random_device{}() * 0x100000001ull;
  try {
    p.validate();
  } catch (const std::invalid_argument& e) {
    throw BadRequest(e.what(), "sampling");
  }
  return p;
}

}  // namespace

engine::RequestId Responder::start(const ResponseSpec& spec, std::shared_ptr<ResponseSink> sink) {
  const bool tools = !spec.tools.empty() && spec.tool_choice != ToolChoiceMode::None;
  if ((spec.tool_choice == ToolChoiceMode::Required || spec.tool_choice == ToolChoiceMode::Function) &&
      spec.tools.empty())
    throw BadRequest("tool_choice asks for a tool call but no tools were given", "tool_choice");
  if (tools && !syntax_)
    throw BadRequest("the model's chat template (" + family_ + ") has no tool-calling format", "tools");

  engine::Request req;
  req.prompt = prompt(spec);
  req.cache_salt = spec.cache_salt;
  req.options.sampling = sampling_params(spec.sampling);
  req.options.stop_ids = stop_ids_;
  if (spec.sampling.stop) req.options.stop_strings = *spec.sampling.stop;
  const int64_t room = std::min<int64_t>(model_.config().max_position_embeddings, engine_.kv_capacity_tokens()) -
                       int64_t(req.prompt.size());
  if (room < 1)
    throw BadRequest("the conversation (" + std::to_string(req.prompt.size()) +
                         " tokens) leaves no room to generate in the context of " +
                         std::to_string(model_.config().max_position_embeddings) + " tokens",
                     "messages");
  req.options.max_tokens = int32_t(std::min<int64_t>(spec.sampling.max_tokens.value_or(room), room));
  if (spec.tool_choice == ToolChoiceMode::Required || spec.tool_choice == ToolChoiceMode::Function) {
    try {
      req.constraint = engine::make_tool_call_constraint(
          vocab_, tok_, *syntax_, spec.tools,
          spec.tool_choice == ToolChoiceMode::Function ? std::optional(spec.function) : std::nullopt);
    } catch (const std::invalid_argument& e) {
      throw BadRequest(e.what(), "tools");
    }
  }

  auto r = std::make_shared<Running>();
  r->sink = std::move(sink);
  if (tools) r->parser.emplace(*syntax_);
  r->queue = std::make_shared<SerialQueue>(pool_);
  r->outcome.prompt_tokens = int64_t(req.prompt.size());
  r->handle = engine_.submit(std::move(req));
  {
    std::lock_guard lock(mu_);
    running_[r->handle.id] = r;
  }
  // The engine thread only schedules a drain; parsing runs on the workers.
  std::weak_ptr<Running> weak = r;
  r->handle.stream->set_notify([this, weak] {
    if (auto self = weak.lock()) self->queue->post([this, self] { drain(self); });
  });
  return r->handle.id;
}

void Responder::cancel(engine::RequestId id) { engine_.cancel(id); }

void Responder::warm(const ResponseSpec& spec) {
  engine::Request req;
  req.prompt = prompt(spec);
  req.cache_salt = spec.cache_salt;
  req.options.max_tokens = 0;
  if (int64_t(req.prompt.size()) < engine_.kv_capacity_tokens()) engine_.submit(std::move(req));
}

void Responder::drain(const std::shared_ptr<Running>& r) {
  if (r->done) return;
  auto deliver = [&](engine::ToolCallDelta d) {
    if (!d.text.empty()) {
      r->outcome.content += d.text;
      r->sink->on_delta(d.text);
    }
    for (auto& c : d.calls) {
      r->sink->on_tool_call(c);
      r->outcome.tool_calls.push_back(std::move(c));
    }
    for (const auto& e : d.errors) {
      // A malformed call stays visible as text rather than vanishing.
      spdlog::debug("response {}: unparsable tool call: {}", r->handle.id, e.message);
      r->outcome.content += e.text;
      r->sink->on_delta(e.text);
    }
  };
  while (auto e = r->handle.stream->try_next()) {
    using Kind = engine::StreamEvent::Kind;
    if (e->kind == Kind::Token || e->kind == Kind::Done) {
      if (!e->text.empty()) {
        if (r->parser) deliver(r->parser->push(e->text));
        else deliver(engine::ToolCallDelta{e->text, {}, {}});
      }
    }
    if (e->kind == Kind::Token || e->kind == Kind::Logits) continue;
    if (r->parser) deliver(r->parser->finish());
    ResponseOutcome& o = r->outcome;
    o.stats = e->stats;
    o.cached_tokens = e->stats.cached_tokens;
    o.completion_tokens = e->stats.generated_tokens;
    if (e->kind == Kind::Error) {
      o.finish_reason = "error";
      o.error = e->error;
    } else {
      o.finish_reason = e->finish_reason;
      if (!o.tool_calls.empty() && (o.finish_reason == "stop" || o.finish_reason == "length"))
        o.finish_reason = "tool_calls";
    }
    r->done = true;
    {
      std::lock_guard lock(mu_);
      running_.erase(r->handle.id);
    }
    r->sink->on_done(o);
    return;
  }
}

}  // namespace mnemo::daemon::app
