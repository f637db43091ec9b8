// Program-level FCFS and the latest-program victim, without an engine.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "engine/serving/program_policies.h"
#include "tests/engine/serving_fixture.h"

namespace mnemo::engine {
namespace {

using Clock = std::chrono::steady_clock;

struct FakeParked : ParkedView {
  std::set<uint64_t> programs;
  bool parked(uint64_t p) const override { return programs.count(p) != 0; }
};

std::unique_ptr<Sequence> seq(RequestId id, uint64_t program, Clock::time_point arrival) {
  Request r;
  r.prompt = {1, 2, 3};
  r.program = {program, arrival, false};
  return std::make_unique<Sequence>(id, r, *serving_testing::fx().tok, std::make_shared<TokenStream>());
}

TEST(ProgramPolicies, ParkedProgramsFirstThenProgramArrival) {
  const auto t0 = Clock::now();
  FakeParked parked;
  parked.programs = {3};
  const ProgramFcfsOrdering order(&parked);
  auto a = seq(10, 1, t0 + std::chrono::seconds(2));  // old request id, late program
  auto b = seq(11, 2, t0 + std::chrono::seconds(1));
  auto c = seq(12, 3, t0 + std::chrono::seconds(5));  // the latest program, but parked
  auto d = seq(13, 2, t0 + std::chrono::seconds(1));  // same program as b, submitted later
  auto e = seq(14, 0, {});                            // a one-turn program: arrival = submit time (~t0)
  EXPECT_EQ(e->request.program.arrival, e->submitted);
  std::vector<Sequence*> v = {a.get(), e.get(), d.get(), c.get(), b.get()};
  std::sort(v.begin(), v.end(), [&](auto* x, auto* y) { return order.before(*x, *y); });
  std::vector<RequestId> ids;
  for (Sequence* s : v) ids.push_back(s->id);
  EXPECT_EQ(ids, (std::vector<RequestId>{12, 14, 11, 13, 10}));
  // Program 0 is never parked, whatever the view says.
  parked.programs.insert(0);
  auto f = seq(15, 0, t0 + std::chrono::seconds(9));
  EXPECT_TRUE(order.before(*a, *f));
  EXPECT_EQ(order.name(), "program-fcfs");
}

TEST(ProgramPolicies, TheVictimIsTheRunningSequenceWhoseProgramArrivedLast) {
  const auto t0 = Clock::now();
  auto a = seq(1, 1, t0 + std::chrono::seconds(3));
  auto b = seq(2, 2, t0 + std::chrono::seconds(1));
  auto c = seq(3, 3, t0 + std::chrono::seconds(2));
  const std::vector<Sequence*> running = {b.get(), a.get(), c.get()};
  EXPECT_EQ(LatestProgramVictim().choose(running), a.get());  // the newest request id (3) is not it
  EXPECT_EQ(LatestProgramVictim().choose(std::span(running).first(1)), b.get());
  EXPECT_EQ(LatestProgramVictim().choose({}), nullptr);
}

}  // namespace
}  // namespace mnemo::engine
