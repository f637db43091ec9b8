#include "engine/serving/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <future>

#include "engine/model/op_profile.h"
#include "engine/serving/program_policies.h"
#include "kernels/cpu/parallel.h"
#include "engine/serving/start_kv.h"

namespace mnemo::engine {

using Clock = std::chrono::steady_clock;

namespace {
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

StreamEvent error_event(std::string msg) {
  StreamEvent e;
  e.kind = StreamEvent::Kind::Error;
  e.error = std::move(msg);
  return e;
}
}  // namespace

namespace {
kv::KvConfig kv_config(const ModelConfig& c, const EngineOptions& opt) {
  kv::KvConfig k;
  k.layers = c.num_layers;
  k.kv_heads = c.num_kv_heads;
  k.head_dim = c.head_dim;
  k.block_size = opt.kv_block_size;
  k.dtype = opt.kv_dtype;
  k.bytes_budget = opt.kv_cache_bytes;
  if (opt.kv_cache_tokens > 0)
    k.bytes_budget = (opt.kv_cache_tokens + k.block_size - 1) / k.block_size * k.layers * k.bytes_per_block();
  return k;
}

std::unique_ptr<OrderingPolicy> ordering(const RetentionOptions& r, const ParkedView* parked) {
  if (r.program_fcfs) return std::make_unique<ProgramFcfsOrdering>(parked);
  return std::make_unique<FcfsOrdering>();
}

std::unique_ptr<VictimPolicy> victim(const RetentionOptions& r) {
  if (r.program_fcfs) return std::make_unique<LatestProgramVictim>();
  return std::make_unique<LatestArrivalVictim>();
}
}  // namespace

Engine::Engine(const Model& model, const Tokenizer& tok, EngineOptions opt)
    : model_(model),
      tok_(tok),
      opt_(opt),
      cache_(kv_config(model.config(), opt)),
      retention_(opt.retention, cache_),
      scheduler_(opt.scheduler, cache_, ordering(opt.retention, &retention_), victim(opt.retention), &retention_),
      stop_ids_(model.config().eos_token_ids) {
  spdlog::info("engine: KV pool of {} tokens ({} blocks of {} tokens, {} MB), KV in {}: {} bytes per token",
               kv_capacity_tokens(), cache_.allocator().num_blocks(), cache_.config().block_size,
               (cache_.allocator().num_blocks() * cache_.bytes_per_block() * cache_.config().layers) >> 20,
               kernels::kv_dtype_name(cache_.dtype()), kv_bytes_per_token());
  // The kernels' thread count is per thread: carry the caller's into the loop.
  const int threads = opt_.threads > 0 ? opt_.threads : kernels::cpu::num_threads();
  thread_ = std::thread([this, threads] {
    kernels::cpu::set_num_threads(threads);
    loop();
  });
}

int64_t Engine::kv_capacity_tokens() const { return int64_t(cache_.allocator().num_blocks()) * cache_.config().block_size; }

int64_t Engine::kv_bytes_per_token() const {
  return cache_.bytes_per_block() * cache_.config().layers / cache_.config().block_size;
}

Engine::~Engine() { shutdown(); }

RequestHandle Engine::submit(Request req) {
  RequestHandle h{0, std::make_shared<TokenStream>()};
  std::string why;
  const int64_t V = model_.config().vocab_size;
  const int64_t total = int64_t(req.prompt.size()) + req.options.max_tokens;
  try {
    req.options.sampling.validate(V);
  } catch (const std::invalid_argument& e) {
    why = e.what();
  }
  if (req.prompt.empty()) why = "the prompt has no tokens";
  for (int32_t t : req.prompt)
    if (t < 0 || t >= V) why = "prompt token " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(V);
  if (req.options.max_tokens < 0) why = "max_tokens must be >= 0";
  // A usable starting snapshot: the pool must hold its slots, not its tokens.
  int64_t start_tokens = 0, start_slots = 0;
  bool start_refused = false;
  if (req.start_kv && why.empty()) {
    std::string skip;
    const std::optional<StartKvInfo> info = read_start_kv(*req.start_kv, cache_.config(), &skip);
    if (info) {
      const auto& t = info->tokens;
      if (t.empty() || t.size() >= req.prompt.size()) skip = "its " + std::to_string(t.size()) +
                                                             " tokens leave no prompt token to compute";
      else if (!std::equal(t.begin(), t.end(), req.prompt.begin())) skip = "its tokens are not a prefix of the prompt";
      else if (info->salt != req.cache_salt) skip = "it was computed under another cache salt";
      else if (req.logits == LogitsOutput::All) skip = "every prompt row was asked for";
    }
    if (skip.empty() && info->slots > kv_capacity_tokens()) {
      why = "the start_kv snapshot holds " + std::to_string(info->slots) + " slots per layer, more than the KV capacity of " +
            std::to_string(kv_capacity_tokens()) + " tokens";
      start_refused = true;
    } else if (skip.empty()) {
      start_tokens = int64_t(info->tokens.size());
      start_slots = info->slots;
    } else {
      spdlog::debug("request start_kv ignored: {}", skip);
    }
  }
  const int64_t need = start_tokens > 0 ? total - start_tokens + start_slots : total;
  if (need > kv_capacity_tokens() && !start_refused)
    why = "prompt plus max_tokens (" + std::to_string(total) + ") exceeds the KV capacity of " +
          std::to_string(kv_capacity_tokens()) + " tokens";
  std::unique_lock lock(mu_);
  h.id = next_id_++;
  if (why.empty() && stopping_) why = "the engine is shutting down";
  if (why.empty() && live_ >= opt_.max_queued) why = "too many requests in flight (" + std::to_string(live_) + ")";
  if (!why.empty()) {
    lock.unlock();
    h.stream->push(error_event(why));
    return h;
  }
  if (start_tokens == 0) req.start_kv = nullptr;
  inbox_.push_back(std::make_unique<Sequence>(h.id, std::move(req), tok_, h.stream));
  inbox_.back()->start_kv_tokens = start_tokens;
  inbox_.back()->start_kv_slots = start_slots;
  ++live_;
  lock.unlock();
  wake_.notify_one();
  return h;
}

void Engine::cancel(RequestId id) {
  {
    std::lock_guard lock(mu_);
    cancels_.push_back(id);
  }
  wake_.notify_one();
}

void Engine::retain(uint64_t program, double seconds) {
  {
    std::lock_guard lock(mu_);
    retains_.emplace_back(program, seconds);
  }
  wake_.notify_one();
}

void Engine::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

EngineCounters Engine::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

void Engine::loop() {
  for (;;) {
    {
      // Parked programs are loop-thread state: read the nearest deadline
      // before sleeping, so an expiry wakes the loop even when idle.
      const std::optional<Clock::time_point> deadline = retention_.next_deadline();
      std::unique_lock lock(mu_);
      const auto ready = [&] {
        return stopping_ || !inbox_.empty() || !cancels_.empty() || !retains_.empty() || !tasks_.empty() ||
               !scheduler_.idle();
      };
      if (deadline) wake_.wait_until(lock, *deadline, ready);
      else wake_.wait(lock, ready);
      if (stopping_) break;
    }
    drain_inbox();
    if (!retention_.empty()) {
      const auto r0 = Clock::now();
      const double copy0 = retention_.tier_copy_seconds();
      retention_.expire();
      const double spent = since(r0) - (retention_.tier_copy_seconds() - copy0);
      {
        std::lock_guard lock(mu_);
        counters_.retention_seconds += spent;
      }
      publish_counters();
    }
    if (!scheduler_.idle()) step();
  }
  drain_inbox();
  std::vector<Sequence*> live;
  for (auto& [_, s] : seqs_) live.push_back(s.get());
  for (Sequence* s : live) finish(*s, "shutdown");
  seqs_.clear();
}

void Engine::drain_inbox() {
  std::vector<std::unique_ptr<Sequence>> fresh;
  std::vector<RequestId> cancels;
  std::vector<std::function<void()>> tasks;
  std::vector<std::pair<uint64_t, double>> retains;
  {
    std::lock_guard lock(mu_);
    fresh.swap(inbox_);
    cancels.swap(cancels_);
    retains.swap(retains_);
    tasks.swap(tasks_);
  }
  for (auto& s : fresh) {
    Sequence* p = s.get();
    retention_.arrived(*p);
    seqs_[p->id] = std::move(s);
    scheduler_.add(p);
  }
  for (RequestId id : cancels) {
    auto it = seqs_.find(id);
    if (it == seqs_.end()) continue;  // finished already, or never existed
    finish(*it->second, "cancelled");
    seqs_.erase(it);
  }
  if (!retains.empty()) {
    const auto r0 = Clock::now();
    const double copy0 = retention_.tier_copy_seconds();
    for (auto [program, seconds] : retains) retention_.retain(program, seconds);
    const double spent = since(r0) - (retention_.tier_copy_seconds() - copy0);
    std::lock_guard lock(mu_);
    counters_.retention_seconds += spent;
  }
  for (auto& t : tasks) t();
  if (!cancels.empty() || !retains.empty()) publish_counters();
}

void Engine::publish_counters() {
  std::lock_guard lock(mu_);
  counters_.scheduler = scheduler_.counters();
  counters_.kv = cache_.stats(0);
  counters_.running = int64_t(scheduler_.num_running());
  counters_.waiting = int64_t(scheduler_.num_waiting());
  counters_.retention = retention_.counters();
}

void Engine::inspect_kv(const std::function<void(const kv::KvCacheManager&)>& f) {
  std::promise<void> done;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    tasks_.push_back([&] {
      f(cache_);
      done.set_value();
    });
  }
  wake_.notify_one();
  done.get_future().wait();
}

void Engine::step() {
  const auto t0 = Clock::now();
  const double copy0 = retention_.tier_copy_seconds();
  const std::vector<ScheduledItem> items = scheduler_.schedule();
  // Host-tier copies are the reload itself, not the policy's overhead.
  const double schedule_s = since(t0) - (retention_.tier_copy_seconds() - copy0);
  if (items.empty()) {
    std::lock_guard lock(mu_);
    counters_.schedule_seconds += schedule_s;
    return;
  }
  std::vector<Model::BatchItem> batch;
  for (const ScheduledItem& it : items) {
    Sequence& s = *it.seq;
    if (s.stats.prompt_tokens == 0) {
      s.stats.prompt_tokens = s.prompt_len();
      s.stats.queue_seconds = since(s.submitted);
    }
    Model::BatchItem b;
    b.tokens = std::span(s.tokens).subspan(size_t(s.num_computed), size_t(it.n_tokens));
    retention_.computed_prompt(s, std::max<int64_t>(0, std::min(s.num_computed + it.n_tokens, s.prompt_len()) - s.num_computed));
    b.all_logits = s.request.logits == LogitsOutput::All && s.in_prompt();
    b.paged = &cache_;
    b.seq = s.kv;
    batch.push_back(b);
  }
  const auto f0 = Clock::now();
  std::vector<float> logits = model_.forward_batch(batch);
  const double forward_s = since(f0);

  const int64_t V = model_.config().vocab_size;
  std::vector<RequestId> done;
  size_t row = 0;  // first logits row of item i
  for (size_t i = 0; i < items.size(); ++i) {
    Sequence& s = *items[i].seq;
    const size_t rows = batch[i].all_logits ? size_t(items[i].n_tokens) : 1;
    const size_t last = row + rows - 1;
    cache_.commit(s.kv);
    const int64_t first_pos = s.num_computed;
    s.num_computed += items[i].n_tokens;
    if (batch[i].all_logits || (s.request.logits == LogitsOutput::Last && s.num_computed == s.prompt_len())) {
      StreamEvent e;
      e.kind = StreamEvent::Kind::Logits;
      const size_t first = batch[i].all_logits ? row : last;
      e.first_row = batch[i].all_logits ? first_pos : s.prompt_len() - 1;
      e.logits.assign(logits.begin() + std::ptrdiff_t(first * size_t(V)), logits.begin() + std::ptrdiff_t((last + 1) * size_t(V)));
      s.stream->push(std::move(e));
    }
    row += rows;
    if (s.uncomputed() > 0) continue;  // mid-prefill: no token yet
    if (!sample(s, std::span<float>(&logits[last * size_t(V)], size_t(V)))) done.push_back(s.id);
  }
  for (RequestId id : done) seqs_.erase(id);
  {
    std::lock_guard lock(mu_);
    counters_.steps++;
    counters_.forward_seconds += forward_s;
    counters_.schedule_seconds += schedule_s;
    counters_.step_seconds += since(t0);
  }
  publish_counters();
}

bool Engine::sample(Sequence& s, std::span<float> row) {
  if (s.generated() >= s.request.options.max_tokens) {
    finish(s, "length");
    return false;
  }
  std::optional<prof::Scope> timed;
  if (prof::enabled()) timed.emplace(prof::Op::Sampling, row.size() * sizeof(float));
  LogitsConstraint* constraint = s.request.constraint.get();
  if (constraint) constraint->mask(row);
  const int32_t next = s.sampler.sample(row, s.tokens, size_t(s.prompt_len()));
  if (constraint) constraint->accept(next);
  std::optional<TokenLogprobs> logprobs;
  // row now holds what the token was drawn from (see logprobs.h).
  if (s.request.options.sampling.logprobs)
    logprobs = token_logprobs(row, next, s.request.options.sampling.top_logprobs);
  timed.reset();
  const auto& extra = s.request.options.stop_ids;
  if (!constraint && ((!s.request.options.ignore_eos && std::find(stop_ids_.begin(), stop_ids_.end(), next) != stop_ids_.end()) ||
                      std::find(extra.begin(), extra.end(), next) != extra.end())) {
    finish(s, "stop");
    return false;
  }
  emit_token(s, next, std::move(logprobs));
  if (s.state != SeqState::Finished && constraint && constraint->done()) finish(s, "stop");
  return s.state != SeqState::Finished;
}

void Engine::emit_token(Sequence& s, int32_t token, std::optional<TokenLogprobs> logprobs) {
  s.tokens.push_back(token);
  const auto now = Clock::now();
  if (s.last_token_at) s.stats.inter_token_seconds.push_back(std::chrono::duration<double>(now - *s.last_token_at).count());
  else s.stats.ttft_seconds = std::chrono::duration<double>(now - s.submitted).count();
  s.last_token_at = now;
  s.stats.generated_tokens = s.generated();
  StreamEvent e;
  e.token = token;
  e.logprobs = std::move(logprobs);
  e.text = s.stops.push(s.decoder.push(token));
  s.stream->push(std::move(e));
  if (s.stops.stopped()) finish(s, "stop");
  else if (s.generated() >= s.request.options.max_tokens) finish(s, "length");
}

void Engine::finish(Sequence& s, std::string reason) {
  if (s.state == SeqState::Finished) return;
  StreamEvent e;
  e.kind = StreamEvent::Kind::Done;
  if (!s.stops.stopped()) e.text = s.stops.push(s.decoder.flush()) + s.stops.flush();
  e.finish_reason = std::move(reason);
  e.stats = s.stats;
  s.state = SeqState::Finished;
  // A turn that ended normally keeps its KV under its program for the next
  // turn (Continuum); cancelled or shut-down turns have no next turn to serve.
  const bool ended = e.finish_reason == "stop" || e.finish_reason == "length";
  // A compacted sequence (a compressed history) is in no prefix index: parked, no turn could find it.
  if (ended && s.request.program.hold_after && s.request.program.id != 0 && s.kv.valid() && !cache_.compacted(s.kv))
    retention_.park(s);
  scheduler_.remove(&s);
  spdlog::debug("request {} finished: {} ({} prompt, {} cached, {} generated tokens)", s.id, e.finish_reason,
                s.stats.prompt_tokens, s.stats.cached_tokens, s.stats.generated_tokens);
  s.stream->push(std::move(e));
  std::lock_guard lock(mu_);
  --live_;
}

}  // namespace mnemo::engine
