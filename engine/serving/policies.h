#pragma once
// Scheduling decisions as objects, so later policies (program-level FCFS for
// agent programs, TTL-aware victims) plug in without touching the scheduler.
#include <memory>
#include <span>
#include <string>

#include "engine/serving/sequence.h"

namespace mnemo::engine {

// Orders waiting sequences: true when a should be admitted before b.
class OrderingPolicy {
 public:
  virtual ~OrderingPolicy() = default;
  virtual bool before(const Sequence& a, const Sequence& b) const = 0;
  virtual std::string name() const = 0;
};

// Picks the running sequence to preempt when memory runs out.
class VictimPolicy {
 public:
  virtual ~VictimPolicy() = default;
  virtual Sequence* choose(std::span<Sequence* const> running) const = 0;
  virtual std::string name() const = 0;
};

// First come, first served by submission time (ids break ties).
class FcfsOrdering : public OrderingPolicy {
 public:
  bool before(const Sequence& a, const Sequence& b) const override {
    return a.submitted != b.submitted ? a.submitted < b.submitted : a.id < b.id;
  }
  std::string name() const override { return "fcfs"; }
};

// The latest arrival loses its cache first: the oldest requests keep moving.
class LatestArrivalVictim : public VictimPolicy {
 public:
  Sequence* choose(std::span<Sequence* const> running) const override {
    Sequence* v = nullptr;
    for (Sequence* s : running)
      if (!v || FcfsOrdering().before(*v, *s)) v = s;
    return v;
  }
  std::string name() const override { return "latest-arrival"; }
};

}  // namespace mnemo::engine
