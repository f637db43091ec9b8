#include "daemon/app/program_tracker.h"

#include <algorithm>

namespace mnemo::daemon::app {

namespace {
double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

const char* to_string(ProgramSource s) {
  switch (s) {
    case ProgramSource::None: return "none";
    case ProgramSource::Explicit: return "explicit";
    case ProgramSource::Inferred: return "inferred";
  }
  return "none";
}

ProgramTracker::ProgramTracker(ProgramTrackerOptions opt) : opt_(opt) {
  if (opt_.block_size < 1) opt_.block_size = 1;
}

ProgramTracker::Program& ProgramTracker::create(const std::string& key, Clock::time_point now) {
  if (programs_.size() >= opt_.max_programs) {
    // The least recently active program that has no turn running goes.
    auto victim = programs_.end();
    for (auto it = programs_.begin(); it != programs_.end(); ++it)
      if (it->second.running == 0 && (victim == programs_.end() || it->second.last_active < victim->second.last_active))
        victim = it;
    if (victim != programs_.end()) {
      if (!victim->second.key.empty()) by_key_.erase(victim->second.key);
      // An inferred entry pointing at it finds no program and starts afresh.
      programs_.erase(victim);
    }
  }
  const uint64_t id = next_id_++;
  Program& p = programs_[id];
  p.id = id;
  p.key = key;
  p.arrival = p.last_active = now;
  if (!key.empty()) by_key_[key] = id;
  return p;
}

TurnStart ProgramTracker::next_turn(Program& p, std::span<const int32_t> prompt, Clock::time_point now) {
  TurnStart t;
  t.program = p.id;
  t.turn = p.turns++;
  t.program_arrival = p.arrival;
  t.arrival = now;
  ++p.running;
  p.last_active = now;
  if (t.turn > 0 && p.last_end) {
    t.prev_tool = p.last_tool;
    // The previous turn computed KV for its prompt and all but its last
    // generated token; the prefix cache reuses full blocks only, and this
    // prompt must keep one token to compute.
    t.prev_kv_tokens =
        std::max<int64_t>(0, std::min(full_blocks(p.last_tokens - 1), full_blocks(int64_t(prompt.size()) - 1)));
    if (!p.last_tool.empty() && !p.tool_reported) t.tool_seconds = seconds_between(*p.last_end, now);
  }
  return t;
}

std::list<ProgramTracker::Inferred>::iterator ProgramTracker::match(std::span<const int32_t> prompt, uint64_t salt,
                                                                    int64_t& common) {
  auto best = inferred_.end();
  common = 0;
  // Newest first: of conversations that match equally far, the latest wins.
  for (auto it = inferred_.end(); it != inferred_.begin();) {
    --it;
    const Inferred& e = *it;
    const size_t n = e.prompt_len;
    // The next turn strictly extends the pinned turn's whole prompt (a resend
    // of the same prompt is a retry, not a next turn).
    if (e.salt != salt || n == 0 || prompt.size() <= n) continue;
    if (prompt[n - 1] != e.tokens[n - 1] || !std::equal(prompt.begin(), prompt.begin() + n, e.tokens.begin())) continue;
    // Then as far into the generated tokens as it reproduces them: this
    // tells apart conversations that shared a prompt and sampled differently.
    size_t c = n;
    const size_t end = std::min(prompt.size(), e.tokens.size());
    while (c < end && prompt[c] == e.tokens[c]) ++c;
    if (int64_t(c) > common) {
      common = int64_t(c);
      best = it;
    }
  }
  return best;
}

void ProgramTracker::drop_inferred(std::list<Inferred>::iterator it, bool forget_program) {
  inferred_tokens_ -= int64_t(it->tokens.size());
  if (forget_program)
    if (auto p = programs_.find(it->program); p != programs_.end() && p->second.running == 0) programs_.erase(p);
  inferred_.erase(it);
}

void ProgramTracker::purge(Clock::time_point now) {
  for (auto it = inferred_.begin(); it != inferred_.end();) {
    auto next = std::next(it);
    if (it->expires <= now) drop_inferred(it, true);
    it = next;
  }
  // Explicit programs whose client never ended them: checked every few
  // seconds, not on every request.
  if (now - last_purge_ < std::chrono::seconds(5)) return;
  last_purge_ = now;
  const auto idle = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.idle_program_seconds));
  for (auto it = programs_.begin(); it != programs_.end();) {
    const Program& p = it->second;
    if (!p.key.empty() && p.running == 0 && now - p.last_active > idle) {
      by_key_.erase(p.key);
      it = programs_.erase(it);
    } else {
      ++it;
    }
  }
}

TurnStart ProgramTracker::arrive(const ProgramRef& ref, std::span<const int32_t> prompt, uint64_t salt,
                                 bool may_call_tools, Clock::time_point now) {
  std::lock_guard lock(mu_);
  purge(now);
  TurnStart t;
  if (!ref.key.empty()) {
    auto it = by_key_.find(ref.key);
    Program& p = it == by_key_.end() ? create(ref.key, now) : programs_.at(it->second);
    t = next_turn(p, prompt, now);
    t.source = ProgramSource::Explicit;
    t.last_step = ref.last_step;
  } else if (int64_t common = 0; !inferred_.empty()) {
    auto m = match(prompt, salt, common);
    if (m != inferred_.end()) {
      const uint64_t id = m->program;
      drop_inferred(m, false);
      if (auto p = programs_.find(id); p != programs_.end()) {
        t = next_turn(p->second, prompt, now);
        t.source = ProgramSource::Inferred;
        t.matched_tokens = common;
      }
    }
  }
  if (t.source == ProgramSource::None) {
    if (!may_call_tools) {
      // Cannot end in a tool call, extends no pinned conversation: a
      // one-turn program of its own, never merged with another.
      t.arrival = t.program_arrival = now;
      return t;
    }
    // Might end in a tool call: a program from its first turn, so the
    // engine can hold its KV when it does.
    t = next_turn(create("", now), prompt, now);
    t.source = ProgramSource::Inferred;
  }
  t.salt = salt;
  return t;
}

TurnEnd ProgramTracker::finish(const TurnStart& t, bool called_tool, const std::string& tool,
                               std::span<const int32_t> prompt, std::span<const int32_t> generated,
                               double pin_seconds, Clock::time_point now) {
  if (t.program == 0) return {};
  std::lock_guard lock(mu_);
  auto it = programs_.find(t.program);
  if (it == programs_.end()) return {};  // ended (program.end) or dropped while the turn ran
  Program& p = it->second;
  --p.running;
  p.last_active = now;
  p.last_end = now;
  p.last_tool = called_tool ? tool : "";
  p.last_tokens = int64_t(prompt.size() + generated.size());
  p.tool_reported = false;
  const bool ends = t.source == ProgramSource::Explicit ? t.last_step : !called_tool;
  if (ends) {
    TurnEnd out{true, p.turns};
    if (p.running == 0) {
      if (!p.key.empty()) by_key_.erase(p.key);
      programs_.erase(it);
    }
    return out;
  }
  if (t.source == ProgramSource::Inferred) {
    Inferred e;
    e.program = p.id;
    e.salt = t.salt;
    e.prompt_len = prompt.size();
    e.tokens.reserve(prompt.size() + generated.size());
    e.tokens.insert(e.tokens.end(), prompt.begin(), prompt.end());
    e.tokens.insert(e.tokens.end(), generated.begin(), generated.end());
    e.expires = now + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(std::max(0.0, pin_seconds) + opt_.inferred_grace_seconds));
    inferred_tokens_ += int64_t(e.tokens.size());
    inferred_.push_back(std::move(e));
    while (!inferred_.empty() && (inferred_.size() > opt_.max_inferred || inferred_tokens_ > opt_.max_inferred_tokens))
      drop_inferred(inferred_.begin(), true);
  }
  return {};
}

uint64_t ProgramTracker::begin(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
  return create(key, now).id;
}

std::optional<std::pair<uint64_t, int>> ProgramTracker::end(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  const uint64_t id = it->second;
  by_key_.erase(it);
  auto p = programs_.find(id);
  if (p == programs_.end()) return std::nullopt;
  const int turns = p->second.turns;
  programs_.erase(p);
  return std::pair{id, turns};
}

void ProgramTracker::tool_started(const std::string& call_id, const std::string& name, const std::string& program_key,
                                  Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (tools_.size() >= opt_.max_running_tools && !tools_.count(call_id)) {
    auto oldest = std::min_element(tools_.begin(), tools_.end(),
                                   [](const auto& a, const auto& b) { return a.second.start < b.second.start; });
    tools_.erase(oldest);
  }
  uint64_t program = 0;
  if (auto it = by_key_.find(program_key); !program_key.empty() && it != by_key_.end()) program = it->second;
  tools_[call_id] = RunningTool{name, program, now};
}

std::optional<ToolTiming> ProgramTracker::tool_ended(const std::string& call_id, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = tools_.find(call_id);
  if (it == tools_.end()) return std::nullopt;
  ToolTiming out{it->second.name, seconds_between(it->second.start, now), it->second.program};
  tools_.erase(it);
  if (auto p = programs_.find(out.program); p != programs_.end()) p->second.tool_reported = true;
  return out;
}

size_t ProgramTracker::programs() const {
  std::lock_guard lock(mu_);
  return programs_.size();
}

size_t ProgramTracker::inferred() const {
  std::lock_guard lock(mu_);
  return inferred_.size();
}

int64_t ProgramTracker::inferred_tokens() const {
  std::lock_guard lock(mu_);
  return inferred_tokens_;
}

}  // namespace mnemo::daemon::app
