// ProgramTracker: programs named by clients, programs inferred from token
// prefixes for clients that name none, bounds, and one-turn requests that are
// never merged.
#include <gtest/gtest.h>

#include <numeric>

#include "daemon/app/program_tracker.h"

namespace mnemo::daemon::app {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<int32_t> seq(int32_t from, int n) {
  std::vector<int32_t> v(size_t(n), 0);
  std::iota(v.begin(), v.end(), from);
  return v;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct Fixture : ::testing::Test {
  Clock::time_point t0 = Clock::now();
  ProgramTracker tracker;
};

TEST_F(Fixture, InfersTheNextTurnByTokenPrefix) {
  const auto prompt = seq(0, 100), gen = seq(1000, 20);
  TurnStart a = tracker.arrive({}, prompt, 0, true, t0);
  EXPECT_NE(a.program, 0u);
  EXPECT_EQ(a.source, ProgramSource::Inferred);
  EXPECT_EQ(a.turn, 0);
  EXPECT_FALSE(tracker.finish(a, true, "search", prompt, gen, 2.0, t0 + seconds(1)).program_ended);
  EXPECT_EQ(tracker.inferred(), 1u);

  // The tool result appended: the prompt extends prompt + generated.
  const auto next = concat(concat(prompt, gen), seq(5000, 30));
  TurnStart b = tracker.arrive({}, next, 0, true, t0 + seconds(4));
  EXPECT_EQ(b.program, a.program);
  EXPECT_EQ(b.turn, 1);
  EXPECT_EQ(b.program_arrival, a.program_arrival);
  EXPECT_EQ(b.prev_tool, "search");
  ASSERT_TRUE(b.tool_seconds);
  EXPECT_NEAR(*b.tool_seconds, 3.0, 1e-6);
  EXPECT_EQ(b.matched_tokens, 120);
  EXPECT_EQ(b.prev_kv_tokens, 112);  // 119 computed tokens: 7 full blocks
  EXPECT_EQ(tracker.inferred(), 0u);  // consumed

  // It answers without a tool call: the program ends with 2 turns.
  TurnEnd e = tracker.finish(b, false, "", next, seq(9000, 5), 0, t0 + seconds(5));
  EXPECT_TRUE(e.program_ended);
  EXPECT_EQ(e.turns, 2);
  EXPECT_EQ(tracker.programs(), 0u);
}

TEST_F(Fixture, OtherSaltsAndOtherConversationsDoNotMatch) {
  const auto prompt = seq(0, 64), gen = seq(1000, 8);
  TurnStart a = tracker.arrive({}, prompt, 7, true, t0);
  tracker.finish(a, true, "f", prompt, gen, 1, t0);
  // Same tokens, other tenant.
  TurnStart other_salt = tracker.arrive({}, concat(concat(prompt, gen), seq(7, 3)), 8, true, t0);
  EXPECT_NE(other_salt.program, a.program);
  EXPECT_EQ(other_salt.turn, 0);
  // A prompt that diverges inside the pinned prompt.
  auto diverged = concat(concat(prompt, gen), seq(7, 3));
  diverged[10] = 99999;
  EXPECT_NE(tracker.arrive({}, diverged, 7, true, t0).program, a.program);
  // A resend of the same prompt (a retry) is not the next turn.
  EXPECT_NE(tracker.arrive({}, prompt, 7, true, t0).program, a.program);
  EXPECT_EQ(tracker.inferred(), 1u);
}

TEST_F(Fixture, LongestReproducedConversationWins) {
  // Two programs shared a prompt and sampled different calls.
  const auto prompt = seq(0, 40);
  TurnStart a = tracker.arrive({}, prompt, 0, true, t0);
  TurnStart b = tracker.arrive({}, prompt, 0, true, t0);
  ASSERT_NE(a.program, b.program);
  tracker.finish(a, true, "f", prompt, seq(100, 10), 1, t0);
  tracker.finish(b, true, "f", prompt, seq(200, 10), 1, t0);
  TurnStart next_a = tracker.arrive({}, concat(concat(prompt, seq(100, 10)), seq(7, 2)), 0, true, t0);
  EXPECT_EQ(next_a.program, a.program);
  TurnStart next_b = tracker.arrive({}, concat(concat(prompt, seq(200, 10)), seq(7, 2)), 0, true, t0);
  EXPECT_EQ(next_b.program, b.program);
}

TEST_F(Fixture, OneTurnRequestsAreNeverMerged) {
  const auto prompt = seq(0, 50);
  for (int i = 0; i < 3; ++i) {
    TurnStart t = tracker.arrive({}, prompt, 0, /*may_call_tools=*/false, t0);
    EXPECT_EQ(t.program, 0u);
    EXPECT_EQ(t.source, ProgramSource::None);
    EXPECT_EQ(t.turn, 0);
    EXPECT_FALSE(tracker.finish(t, false, "", prompt, seq(1, 3), 0, t0).program_ended);
  }
  EXPECT_EQ(tracker.programs(), 0u);
  EXPECT_EQ(tracker.inferred(), 0u);
  // A request with tools that answers in text is a one-turn program that ends.
  TurnStart t = tracker.arrive({}, prompt, 0, true, t0);
  EXPECT_NE(t.program, 0u);
  TurnEnd e = tracker.finish(t, false, "", prompt, seq(1, 3), 0, t0);
  EXPECT_TRUE(e.program_ended);
  EXPECT_EQ(e.turns, 1);
  EXPECT_NE(tracker.arrive({}, prompt, 0, true, t0).program, t.program);
}

TEST_F(Fixture, InferredTableIsBoundedByCountTokensAndAge) {
  ProgramTrackerOptions o;
  o.max_inferred = 3;
  o.max_inferred_tokens = 1000;
  o.inferred_grace_seconds = 10;
  ProgramTracker small(o);
  std::vector<TurnStart> turns;
  for (int i = 0; i < 5; ++i) {
    const auto prompt = seq(i * 1000, 20);
    turns.push_back(small.arrive({}, prompt, 0, true, t0));
    small.finish(turns.back(), true, "f", prompt, seq(50000, 4), 2.0, t0);
  }
  EXPECT_EQ(small.inferred(), 3u);  // the two oldest dropped
  EXPECT_EQ(small.programs(), 3u);  // and their programs forgotten
  // The oldest survivor is still found...
  const auto p2 = concat(concat(seq(2000, 20), seq(50000, 4)), seq(1, 1));
  EXPECT_EQ(small.arrive({}, p2, 0, true, t0 + seconds(1)).program, turns[2].program);
  // ... a dropped one is not.
  const auto p0 = concat(concat(seq(0, 20), seq(50000, 4)), seq(1, 1));
  EXPECT_NE(small.arrive({}, p0, 0, true, t0 + seconds(1)).program, turns[0].program);
  // Past pin (2 s) + grace (10 s) the rest are gone.
  const auto p4 = concat(concat(seq(4000, 20), seq(50000, 4)), seq(1, 1));
  EXPECT_NE(small.arrive({}, p4, 0, true, t0 + seconds(13)).program, turns[4].program);
  EXPECT_EQ(small.inferred(), 0u);

  // Tokens: one conversation larger than the budget does not stay.
  const auto big = seq(0, 1200);
  TurnStart t = small.arrive({}, big, 0, true, t0 + seconds(20));
  small.finish(t, true, "f", big, seq(1, 1), 1, t0 + seconds(20));
  EXPECT_EQ(small.inferred(), 0u);
  EXPECT_EQ(small.inferred_tokens(), 0);
}

TEST_F(Fixture, ExplicitProgramsCountTurnsAndEndAtTheLastStep) {
  ProgramRef job{"job:j1", false, std::nullopt};
  TurnStart a = tracker.arrive(job, seq(0, 10), 0, false, t0);
  EXPECT_EQ(a.source, ProgramSource::Explicit);
  EXPECT_NE(a.program, 0u);
  tracker.finish(a, true, "grep", seq(0, 10), seq(1, 2), 1, t0 + seconds(1));
  TurnStart b = tracker.arrive(job, seq(100, 10), 0, false, t0 + milliseconds(1500));
  EXPECT_EQ(b.program, a.program);
  EXPECT_EQ(b.turn, 1);
  EXPECT_EQ(b.prev_tool, "grep");
  EXPECT_NEAR(*b.tool_seconds, 0.5, 1e-6);
  job.last_step = true;
  tracker.finish(b, false, "", seq(100, 10), seq(1, 2), 0, t0 + seconds(2));
  TurnStart c = tracker.arrive(job, seq(100, 10), 0, false, t0 + seconds(3));
  EXPECT_TRUE(c.last_step);
  TurnEnd e = tracker.finish(c, false, "", seq(100, 10), seq(1, 2), 0, t0 + seconds(3));
  EXPECT_TRUE(e.program_ended);
  EXPECT_EQ(e.turns, 3);
  // The same job id afterwards is a new program.
  EXPECT_NE(tracker.arrive({"job:j1", false, std::nullopt}, seq(0, 10), 0, false, t0 + seconds(4)).program,
            a.program);
}

TEST_F(Fixture, ReportedToolTimesReplaceTheGap) {
  const uint64_t id = tracker.begin("ws:p", t0);
  TurnStart a = tracker.arrive({"ws:p", false, std::nullopt}, seq(0, 10), 0, true, t0);
  EXPECT_EQ(a.program, id);
  tracker.finish(a, true, "run", seq(0, 10), seq(1, 2), 1, t0 + seconds(1));
  tracker.tool_started("call_1", "run", "ws:p", t0 + seconds(2));
  auto timing = tracker.tool_ended("call_1", t0 + milliseconds(2250));
  ASSERT_TRUE(timing);
  EXPECT_EQ(timing->name, "run");
  EXPECT_EQ(timing->program, id);
  EXPECT_NEAR(timing->seconds, 0.25, 1e-6);
  EXPECT_FALSE(tracker.tool_ended("call_1", t0 + seconds(3)));
  TurnStart b = tracker.arrive({"ws:p", false, std::nullopt}, seq(0, 20), 0, true, t0 + seconds(5));
  EXPECT_EQ(b.turn, 1);
  EXPECT_FALSE(b.tool_seconds);  // the exact time was recorded instead
  auto ended = tracker.end("ws:p");
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->first, id);
  EXPECT_EQ(ended->second, 2);
  EXPECT_FALSE(tracker.end("ws:p"));
  // The turn still running finds its program gone and ends nothing twice.
  EXPECT_FALSE(tracker.finish(b, true, "run", seq(0, 20), seq(1, 2), 1, t0 + seconds(6)).program_ended);
}

TEST_F(Fixture, IdleExplicitProgramsAreDropped) {
  ProgramTrackerOptions o;
  o.idle_program_seconds = 60;
  o.max_programs = 2;
  ProgramTracker small(o);
  const uint64_t a = small.begin("ws:a", t0);
  small.begin("ws:b", t0 + seconds(1));
  small.begin("ws:c", t0 + seconds(2));  // past the count: the least recently active goes
  EXPECT_EQ(small.programs(), 2u);
  EXPECT_NE(small.begin("ws:a", t0 + seconds(3)), a);
  // An hour idle: gone at the next arrival.
  small.arrive({}, seq(0, 4), 0, false, t0 + seconds(100));
  EXPECT_EQ(small.programs(), 0u);
}

}  // namespace
}  // namespace mnemo::daemon::app
