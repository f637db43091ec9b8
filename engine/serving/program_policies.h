#pragma once
// Continuum's program-level scheduling: a turn of an agent program is ordered
// by when its program first arrived, so a program that already waited keeps
// its place across tool calls instead of queueing behind newer programs.
#include <tuple>

#include "engine/serving/policies.h"

namespace mnemo::engine {

// Which programs hold parked KV now (the retention table, or a fake in tests).
class ParkedView {
 public:
  virtual ~ParkedView() = default;
  virtual bool parked(uint64_t program) const = 0;
};

// Program arrival, then submit time, then id: earlier first.
inline bool program_before(const Sequence& a, const Sequence& b) {
  return std::tie(a.request.program.arrival, a.submitted, a.id) < std::tie(b.request.program.arrival, b.submitted, b.id);
}

// Turns of programs holding parked KV first (admitting them frees the
// parking and costs no prefill), then the rest; each by program arrival.
// Preempted sequences are ahead of both (the scheduler keeps them apart).
class ProgramFcfsOrdering : public OrderingPolicy {
 public:
  explicit ProgramFcfsOrdering(const ParkedView* parked = nullptr) : parked_(parked) {}
  bool before(const Sequence& a, const Sequence& b) const override {
    const bool pa = holds(a), pb = holds(b);
    if (pa != pb) return pa;
    return program_before(a, b);
  }
  std::string name() const override { return "program-fcfs"; }

 private:
  bool holds(const Sequence& s) const { return parked_ && s.request.program.id != 0 && parked_->parked(s.request.program.id); }
  const ParkedView* parked_;
};

// The running sequence whose program arrived last loses its cache first.
class LatestProgramVictim : public VictimPolicy {
 public:
  Sequence* choose(std::span<Sequence* const> running) const override {
    Sequence* v = nullptr;
    for (Sequence* s : running)
      if (!v || program_before(*v, *s)) v = s;
    return v;
  }
  std::string name() const override { return "latest-program"; }
};

}  // namespace mnemo::engine
