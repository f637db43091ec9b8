#pragma once
// Keeps an agent program's KV in the pool across a tool call (Continuum):
// a finished hold_after turn's cache sequence is parked under its program
// until Engine::retain's deadline, the deadlock guard or the program's next
// turn ends it; leaving KV goes to the host tier when one is set. Loop
// thread only, like the KvCacheManager it works on.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "engine/kv/kv_cache_manager.h"
#include "engine/serving/kv_tier.h"
#include "engine/serving/program_policies.h"
#include "engine/serving/sequence.h"

namespace mnemo::engine {

struct RetentionOptions {
  bool program_fcfs = false;        // program-level FCFS ordering + latest-program victim (else request FCFS)
  double hold_grace_seconds = 10;   // a parked program never given retain() is released after this
  std::shared_ptr<KvTier> tier;     // host-memory tier, or null
};

struct RetentionCounters {
  int64_t parked = 0, parked_blocks = 0;  // now
  int64_t retained_hits = 0;              // turns admitted onto their program's parked KV
  int64_t expiries = 0, guard_releases = 0;
  int64_t tier_puts = 0, tier_hits = 0, tier_misses = 0, tier_bytes = 0;
  int64_t recomputed_tokens = 0;  // prompt tokens computed by turns of programs (id != 0) after their first
  // KV copied between the pool and the host tier (export on put, import on
  // restore): the cost of a reload from the tier.
  double tier_copy_seconds = 0;
  int64_t tier_copy_bytes = 0;
};

class Retention : public ParkedView {
 public:
  using Clock = std::chrono::steady_clock;

  Retention(RetentionOptions opt, kv::KvCacheManager& cache);
  ~Retention() override;
  Retention(const Retention&) = delete;
  Retention& operator=(const Retention&) = delete;

  const RetentionOptions& options() const { return opt_; }
  bool parked(uint64_t program) const override { return parked_.count(program) != 0; }
  bool empty() const { return parked_.empty(); }
  // Blocks parked sequences hold, shared ones counted in each: an upper bound
  // on what releasing them all would free.
  int64_t parked_blocks() const;

  // Marks s as a later turn when its program was seen before.
  void arrived(Sequence& s);
  // Takes over s's cache sequence (s.kv becomes invalid) after a hold_after turn.
  void park(Sequence& s);
  // Keeps program's parked KV `seconds` more; <= 0 releases it now.
  void retain(uint64_t program, double seconds);
  // Releases parkings past their deadline; the nearest remaining deadline.
  std::optional<Clock::time_point> expire();
  std::optional<Clock::time_point> next_deadline() const;
  // Deadlock guard: releases the parked program that arrived last, other
  // than `spare` while another is parked. False when nothing is parked.
  bool release_latest(uint64_t spare, std::string_view why);
  // s now holds a cache sequence reusing `hit` tokens: its program's parking ends.
  void admitted(const Sequence& s, int64_t hit);
  // Preemption by recompute of a program's turn: its KV goes to the tier.
  void stash(const Sequence& s);
  // Before admitting s, whose prefix-cache hit is `hit` tokens: when the tier
  // has a longer verified prefix, imports it into the prefix index (the
  // caller matches again). `room` is the extra slots s needs besides it.
  // NoRoom: the tier holds it but the pool cannot take it now (it stays in
  // the tier); `need_tokens` is then what it would take.
  enum class Restore { None, Restored, NoRoom };
  Restore restore(const Sequence& s, int64_t hit, int64_t room, int64_t* need_tokens = nullptr);
  // Prompt tokens of s computed this step.
  void computed_prompt(const Sequence& s, int64_t n);
  RetentionCounters counters() const;
  double tier_copy_seconds() const { return counters_.tier_copy_seconds; }

 private:
  struct Parked {
    kv::SeqId seq;
    Clock::time_point arrival;   // the program's first arrival (guard order)
    Clock::time_point deadline;
    int64_t blocks = 0;
    uint64_t salt = 0;
  };
  void release(uint64_t program, bool to_tier, std::string_view why);
  bool put_tier(uint64_t program, kv::SeqId seq, uint64_t salt);

  RetentionOptions opt_;
  kv::KvCacheManager& cache_;
  std::unordered_map<uint64_t, Parked> parked_;
  std::unordered_map<uint64_t, Clock::time_point> seen_;  // program -> last turn's arrival, pruned
  RetentionCounters counters_;
};

}  // namespace mnemo::engine
