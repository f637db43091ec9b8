#include "daemon/app/responder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <functional>
#include <random>

#include "daemon/app/continuum.h"
#include "engine/constrain/first_of_constraint.h"
#include "engine/constrain/json_output_constraint.h"
#include "engine/constrain/tool_call_constraint.h"
#include "engine/tokenizer/error.h"
#include "engine/tokenizer/generated_turns.h"

namespace mnemo::daemon::app {

struct Responder::Running {
  engine::RequestHandle handle;
  std::shared_ptr<ResponseSink> sink;
  std::optional<engine::ToolCallParser> parser;
  std::shared_ptr<SerialQueue> queue;
  ResponseOutcome outcome;
  bool done = false;
  // Its agent program (Continuum); the tokens only for inferred programs,
  // whose next turn is recognised by extending them.
  TurnStart turn;
  ProgramRef program;
  std::vector<int32_t> prompt, generated;
  bool keep_tokens = false;
  uint64_t salt = 0;
  bool remember = true;
  bool in_program = false;  // continuum_ took it as a turn of its program
  // Once, at its first event (its prompt computed): the other choices.
  std::function<void()> on_first_event;
};

Responder::Responder(engine::Engine& engine, const engine::Model& model, const engine::Tokenizer& tok,
                     engine::ChatTemplate tmpl, WorkerPool& pool, Continuum* continuum)
    : engine_(engine),
      model_(model),
      tok_(tok),
      tmpl_(std::move(tmpl)),
      encoder_(tmpl_, tok),
      family_(tmpl_.family()),
      syntax_(engine::tool_call_syntax_for_family(family_)),
      vocab_(engine::TokenTrie::build(tok)),
      pool_(pool),
      continuum_(continuum) {
  for (const std::string& s : tmpl_.stop_tokens())
    if (auto id = tok_.token_id(s)) stop_ids_.push_back(*id);
}

std::vector<int32_t> Responder::prompt(const ResponseSpec& spec) const {
  if (spec.raw_prompt) return *spec.raw_prompt;
  // Tools stay in the prompt under tool_choice "none" too: the model still
  // knows them (as in OpenAI's API), and the prompt keeps the same prefix as
  // the turns around it, so the prefix cache still hits.
  static const nlohmann::ordered_json no_tools = nlohmann::ordered_json::array();
  const nlohmann::ordered_json& tools = !spec.tools.empty() && syntax_.has_value() ? spec.tools : no_tools;
  engine::RenderedPrompt rendered;
  try {
    rendered = encoder_.render(spec.messages, tools, true);
  } catch (const engine::TokenizerError& e) {
    throw BadRequest(std::string("the conversation cannot be rendered: ") + e.what(), "messages");
  }
  const int64_t context = model_.config().max_position_embeddings;
  if (int64_t(rendered.text.size()) > context * kMaxBytesPerToken)
    throw BadRequest("the conversation renders to " + std::to_string(rendered.text.size()) +
                         " bytes, more than a context of " + std::to_string(context) + " tokens can hold",
                     "messages");
  // Assistant messages generated here go back as the tokens they were
  // generated as (the KV their turn left), not as the template re-renders them.
  std::vector<engine::GeneratedTurn> turns;
  std::vector<GeneratedMemory::Tokens> held;
  for (size_t i = 0; i < spec.messages.size(); ++i)
    if (auto t = generated_.find(spec.cache_salt, spec.messages[i])) {
      turns.push_back({i, *t});
      held.push_back(std::move(t));
    }
  bool degraded = false;
  std::vector<int32_t> ids;
  if (turns.empty()) {
    ids = encoder_.tokenize(rendered, &degraded);
  } else {
    engine::SplicedPrompt sp = engine::encode_with_generated(encoder_, spec.messages, tools, true, turns);
    degraded = sp.degraded;
    spdlog::debug("prompt: {} assistant message(s) given back as generated, {} rendered by the template instead",
                  sp.spliced, sp.declined);
    ids = std::move(sp.ids);
  }
  if (degraded)
    spdlog::warn("chat template {} changed the length of a string holding special-token text; its blanked form "
                 "was sent to the model",
                 family_);
  return ids;
}

engine::SamplingParams Responder::sampling_params(const ResponseSpec& spec) const {
  const protocol::Sampling& s = spec.sampling;
  engine::SamplingParams p;
  p.temperature = float(s.temperature.value_or(protocol::kDefaultTemperature));
  p.top_p = float(s.top_p.value_or(protocol::kDefaultTopP));
  p.top_k = int32_t(s.top_k.value_or(protocol::kDefaultTopK));
  p.min_p = float(s.min_p.value_or(protocol::kDefaultMinP));
  p.repetition_penalty = float(s.repetition_penalty.value_or(protocol::kDefaultRepetitionPenalty));
  const TokenSampling& t = spec.token_sampling;
  p.frequency_penalty = t.frequency_penalty;
  p.presence_penalty = t.presence_penalty;
  p.logit_bias = t.logit_bias;
  p.logprobs = t.logprobs;
  p.top_logprobs = t.top_logprobs;
  p.seed = s.seed ? *s.seed : std::random_device{}() * 0x100000001ull;
  try {
    p.validate(tok_.vocab_size());
  } catch (const std::invalid_argument& e) {
    // The engine's message starts with the parameter's name.
    const std::string what = e.what();
    const std::string name = what.substr(0, what.find(' '));
    throw BadRequest(what, name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos ? name : "sampling");
  }
  return p;
}

std::unique_ptr<engine::LogitsConstraint> Responder::constraint(const ResponseSpec& spec, bool tools) const {
  if (spec.tool_choice == ToolChoiceMode::Required || spec.tool_choice == ToolChoiceMode::Function) {
    try {
      return engine::make_tool_call_constraint(
          vocab_, tok_, *syntax_, spec.tools,
          spec.tool_choice == ToolChoiceMode::Function ? std::optional(spec.function) : std::nullopt);
    } catch (const std::invalid_argument& e) {
      throw BadRequest(e.what(), "tools");
    }
  }
  if (spec.format.constrained()) return answer_constraint(spec, tools);
  return nullptr;
}

Responder::Prepared Responder::prepare(const ResponseSpec& spec, int64_t kv_saved) const {
  Prepared p;
  p.tools = !spec.tools.empty() && spec.tool_choice != ToolChoiceMode::None;
  if ((spec.tool_choice == ToolChoiceMode::Required || spec.tool_choice == ToolChoiceMode::Function) &&
      spec.tools.empty())
    throw BadRequest("tool_choice asks for a tool call but no tools were given", "tool_choice");
  if (p.tools && !syntax_)
    throw BadRequest("the model's chat template (" + family_ + ") has no tool-calling format", "tools");

  engine::Request& req = p.request;
  // The grammar refuses a schema it cannot compile in microseconds: before
  // the prompt, whose rendering and tokenizing may take far longer.
  req.constraint = constraint(spec, p.tools);
  req.options.sampling = sampling_params(spec);
  req.prompt = prompt(spec);
  req.cache_salt = spec.cache_salt;
  req.options.stop_ids = stop_ids_;
  if (spec.sampling.stop) req.options.stop_strings = *spec.sampling.stop;
  // Positions count every token; the KV cache holds a compressed history's
  // kept slots only.
  const int64_t n = int64_t(req.prompt.size());
  const int64_t position_room = model_.config().max_position_embeddings - n;
  const int64_t kv_room = engine_.kv_capacity_tokens() - (n - std::clamp<int64_t>(kv_saved, 0, n));
  const int64_t room = std::min(position_room, kv_room);
  if (room < 1)
    throw BadRequest(position_room < 1 ? "the conversation (" + std::to_string(n) +
                                             " tokens) leaves no room to generate in the context of " +
                                             std::to_string(model_.config().max_position_embeddings) + " tokens"
                                       : "the conversation (" + std::to_string(n) + " tokens, " +
                                             std::to_string(n - kv_saved) +
                                             " of them in KV) leaves no room to generate in the KV cache of " +
                                             std::to_string(engine_.kv_capacity_tokens()) +
                                             " tokens (--kv-cache-bytes)",
                     "messages");
  req.options.max_tokens = int32_t(std::min<int64_t>(spec.sampling.max_tokens.value_or(room), room));
  return p;
}

void ChoiceGroup::cancel() {
  std::vector<engine::RequestId> ids;
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    ids = ids_;
  }
  for (engine::RequestId id : ids) engine_.cancel(id);
}

engine::RequestHandle ChoiceGroup::submit(engine::Request req) {
  std::lock_guard lock(mu_);
  engine::RequestHandle h = engine_.submit(std::move(req));
  ids_.push_back(h.id);
  // Its client left before it was submitted: it ends at once, "cancelled".
  if (cancelled_) engine_.cancel(h.id);
  return h;
}

engine::RequestId Responder::start(const ResponseSpec& spec, std::shared_ptr<ResponseSink> sink,
                                  std::shared_ptr<const std::vector<uint8_t>> start_kv, int64_t kv_saved) {
  Prepared p = prepare(spec, start_kv ? kv_saved : 0);
  p.request.start_kv = std::move(start_kv);
  return launch(spec, std::move(p.request), p.tools, std::move(sink), nullptr, 0)->handle.id;
}

std::shared_ptr<ChoiceGroup> Responder::start(const ResponseSpec& spec,
                                              std::vector<std::shared_ptr<ResponseSink>> sinks) {
  assert(!sinks.empty());
  Prepared p = prepare(spec);
  auto group = std::make_shared<ChoiceGroup>(engine_);
  // What the other choices need once the first has computed the prompt: a
  // copy of the request, less its constraint (stateful, one per choice).
  engine::Request rest = p.request;
  rest.constraint = nullptr;
  std::function<void()> others;
  if (sinks.size() > 1)
    others = [this, spec, rest = std::move(rest), tools = p.tools, sinks, group] {
      for (size_t i = 1; i < sinks.size(); ++i) {
        engine::Request req = rest;
        req.options.sampling.seed =
            spec.sampling.seed ? *spec.sampling.seed + i : std::random_device{}() * 0x100000001ull;
        try {
          req.constraint = constraint(spec, tools);
        } catch (const BadRequest& e) {
          ResponseOutcome o;  // the first choice compiled the same grammar: not expected
          o.finish_reason = "error";
          o.error = e.what();
          sinks[i]->on_done(o);
          continue;
        }
        launch(spec, std::move(req), tools, sinks[i], group.get(), i);
      }
    };
  launch(spec, std::move(p.request), p.tools, sinks[0], group.get(), 0, std::move(others));
  return group;
}

std::shared_ptr<Responder::Running> Responder::launch(const ResponseSpec& spec, engine::Request req, bool tools,
                                                      std::shared_ptr<ResponseSink> sink, ChoiceGroup* group,
                                                      size_t choice, std::function<void()> on_first_event) {
  auto r = std::make_shared<Running>();
  r->sink = std::move(sink);
  r->on_first_event = std::move(on_first_event);
  if (tools) r->parser.emplace(*syntax_);
  r->queue = std::make_shared<SerialQueue>(pool_);
  r->outcome.prompt_tokens = int64_t(req.prompt.size());
  r->salt = spec.cache_salt;
  // A stop string cuts the text short of the tokens generated: the message
  // sent back would not be what these tokens say.
  r->remember = !spec.sampling.stop || spec.sampling.stop->empty();
  if (continuum_ && choice == 0) {
    // Last, after everything that may refuse the request: an inferred
    // program's pinned conversation is taken by this turn.
    r->turn = continuum_->begin_turn(spec.program, req.prompt, spec.cache_salt, tools);
    r->program = spec.program;
    r->keep_tokens = continuum_->wants_tokens(r->turn);
    if (r->keep_tokens) r->prompt = req.prompt;
    req.program = continuum_->engine_turn(r->turn);
    r->in_program = true;
  }
  r->handle = group ? group->submit(std::move(req)) : engine_.submit(std::move(req));
  {
    std::lock_guard lock(mu_);
    running_[r->handle.id] = r;
  }
  // The engine thread only schedules a drain; parsing runs on the workers.
  std::weak_ptr<Running> weak = r;
  r->handle.stream->set_notify([this, weak] {
    if (auto self = weak.lock()) self->queue->post([this, self] { drain(self); });
  });
  return r;
}

std::unique_ptr<engine::LogitsConstraint> Responder::answer_constraint(const ResponseSpec& spec, bool tools) const {
  auto answer = engine::make_json_output_constraint(vocab_, spec.format.grammar, stop_ids_);
  if (!tools) return answer;
  // tool_choice auto: as with OpenAI, the model may call a tool or answer
  // in the format. Its first tokens decide: a tool call (one, under the
  // forced-call grammar) or the JSON answer, then the end of the turn.
  std::vector<std::unique_ptr<engine::LogitsConstraint>> alternatives;
  alternatives.push_back(std::move(answer));
  try {
    alternatives.push_back(engine::make_tool_call_constraint(vocab_, tok_, *syntax_, spec.tools, std::nullopt));
  } catch (const std::invalid_argument& e) {
    throw BadRequest(e.what(), "tools");
  }
  return std::make_unique<engine::FirstOfConstraint>(std::move(alternatives));
}

void Responder::cancel(engine::RequestId id) { engine_.cancel(id); }

void Responder::warm(const ResponseSpec& spec) {
  engine::Request req;
  req.prompt = prompt(spec);
  req.cache_salt = spec.cache_salt;
  req.options.max_tokens = 0;
  if (int64_t(req.prompt.size()) < engine_.kv_capacity_tokens()) engine_.submit(std::move(req));
}

GeneratedLogprob Responder::logprob(const engine::TokenLogprobs& lp) const {
  GeneratedLogprob out;
  out.chosen = {tok_.token_bytes(lp.chosen.token), lp.chosen.logprob};
  out.top.reserve(lp.top.size());
  for (const auto& t : lp.top) out.top.push_back({tok_.token_bytes(t.token), t.logprob});
  return out;
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
    if (r->on_first_event) std::exchange(r->on_first_event, nullptr)();
    if (e->logprobs) r->sink->on_logprob(logprob(*e->logprobs));
    if (e->kind == Kind::Token && e->token >= 0) r->generated.push_back(e->token);
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
    // Before the client hears it is done: its next turn must find the
    // program's KV kept, its pinned conversation in place and its tokens.
    if (r->in_program) continuum_->end_turn(r->turn, o, r->program, r->prompt, r->generated);
    if (r->remember && (o.finish_reason == "stop" || o.finish_reason == "length" || o.finish_reason == "tool_calls"))
      generated_.remember(r->salt, o.content, o.tool_calls, std::move(r->generated));
    r->prompt = {};
    r->generated = {};
    r->sink->on_done(o);
    return;
  }
}

}  // namespace mnemo::daemon::app
