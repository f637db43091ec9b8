// Continuum's retention in the Engine: a parked program's KV survives memory
// pressure until its next turn, expires on time, never blocks new work (the
// deadlock guard), and comes back from the host tier with a cold run's logits.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "memory/tiers/host_tier.h"
#include "tests/engine/serving_fixture.h"

namespace mnemo::engine {
namespace {

using namespace serving_testing;
using Clock = std::chrono::steady_clock;

// A pool of 16 blocks of 16 tokens.
EngineOptions small_pool() {
  EngineOptions opt = exact_kv();
  opt.kv_cache_tokens = 256;
  return opt;
}

// Turn 1 of a program: 40 prompt tokens and 24 generated, so 63 tokens are
// in the cache (three whole blocks, four blocks held).
Request first_turn(uint64_t program, int seed, bool hold, Clock::time_point arrival = {}) {
  Request r;
  r.prompt = long_prompt(40, seed);
  r.options.max_tokens = 24;
  r.options.ignore_eos = true;
  r.program = {program, arrival, hold};
  return r;
}

Request next_turn(const Request& first, const Outcome& o, uint64_t program) {
  Request r;
  r.prompt = first.prompt;
  r.prompt.insert(r.prompt.end(), o.tokens.begin(), o.tokens.end());
  for (int32_t t : {3, 1, 4, 1, 5, 9}) r.prompt.push_back(t);
  r.options.max_tokens = 4;
  r.program = {program, {}, false};
  return r;
}

// Requests of other tenants that together cycle every free block through the LRU.
void fill_pool(Engine& engine, int seed) {
  for (int i = 0; i < 3; ++i) {
    Request r;
    r.prompt = long_prompt(160, seed + i);
    r.options.max_tokens = 8;
    r.options.ignore_eos = true;
    const Outcome o = collect(engine.submit(r));
    ASSERT_FALSE(o.error) << o.finish;
  }
}

// Counters once the loop has finished the step that ended the last request.
RetentionCounters settled(Engine& engine) {
  engine.inspect_kv([](const kv::KvCacheManager&) {});
  return engine.counters().retention;
}

void expect_sound_pool(Engine& engine, size_t sequences) {
  engine.inspect_kv([&](const kv::KvCacheManager& c) {
    c.check_invariants();
    EXPECT_EQ(c.num_sequences(), sequences);
  });
}

int64_t cached_second_turn(bool hold) {
  Engine engine(*fx().model, *fx().tok, small_pool());
  const Request t1 = first_turn(1, 1, hold);
  const Outcome o1 = collect(engine.submit(t1));
  EXPECT_EQ(o1.tokens.size(), 24u);
  engine.retain(1, 5);
  fill_pool(engine, 100);
  const Request t2 = next_turn(t1, o1, 1);
  const Outcome o2 = collect(engine.submit(t2));
  EXPECT_FALSE(o2.error) << o2.finish;
  EXPECT_EQ(o2.tokens, alone(t2));
  const RetentionCounters c = settled(engine);
  EXPECT_EQ(c.parked, 0);
  EXPECT_EQ(c.guard_releases, 0);
  EXPECT_EQ(c.retained_hits, hold ? 1 : 0);
  EXPECT_EQ(c.recomputed_tokens, o2.stats.prompt_tokens - o2.stats.cached_tokens);
  expect_sound_pool(engine, 0);
  return o2.stats.cached_tokens;
}

TEST(ServingRetention, AParkedProgramKeepsItsKvUnderPressure) {
  EXPECT_EQ(cached_second_turn(true), 48);  // every whole block of turn 1's prompt and reply
  EXPECT_EQ(cached_second_turn(false), 0);  // the LRU lost them to the other requests
}

TEST(ServingRetention, ExpiryReleasesTheParkedBlocks) {
  EngineOptions opt = small_pool();
  opt.retention.hold_grace_seconds = 0.3;  // the second program never gets retain()
  Engine engine(*fx().model, *fx().tok, opt);
  collect(engine.submit(first_turn(1, 2, true)));
  collect(engine.submit(first_turn(2, 3, true)));
  engine.retain(1, 0.1);
  expect_sound_pool(engine, 2);
  RetentionCounters c = settled(engine);
  EXPECT_EQ(c.parked, 2);
  EXPECT_EQ(c.parked_blocks, 8);
  // Nothing else happens: the loop wakes for the deadlines by itself.
  for (int i = 0; i < 100 && engine.counters().retention.parked > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  c = settled(engine);
  EXPECT_EQ(c.parked, 0);
  EXPECT_EQ(c.parked_blocks, 0);
  EXPECT_EQ(c.expiries, 2);
  expect_sound_pool(engine, 0);
  engine.inspect_kv([](const kv::KvCacheManager& cache) { EXPECT_EQ(cache.stats(0).free, cache.stats(0).blocks); });
}

TEST(ServingRetention, RetainZeroAndANewerTurnEndTheParking) {
  Engine engine(*fx().model, *fx().tok, small_pool());
  collect(engine.submit(first_turn(1, 4, true)));
  collect(engine.submit(first_turn(1, 5, true)));  // replaces the older parking of program 1
  EXPECT_EQ(settled(engine).parked, 1);
  expect_sound_pool(engine, 1);
  engine.retain(1, 0);
  engine.retain(77, 3);  // nothing parked: ignored
  expect_sound_pool(engine, 0);
  EXPECT_EQ(settled(engine).parked, 0);
  EXPECT_EQ(settled(engine).expiries, 0);
}

TEST(ServingRetention, ParkedProgramsFillingThePoolNeverBlockANewProgram) {
  EngineOptions opt = small_pool();
  opt.retention.program_fcfs = true;
  opt.retention.hold_grace_seconds = 600;
  Engine engine(*fx().model, *fx().tok, opt);
  const auto t0 = Clock::now();
  std::vector<Request> firsts;
  std::vector<Outcome> outs;
  for (int p = 1; p <= 4; ++p) {
    firsts.push_back(first_turn(uint64_t(p), 10 + p, true, t0 + std::chrono::milliseconds(p)));
    outs.push_back(collect(engine.submit(firsts.back())));
    engine.retain(uint64_t(p), 600);
  }
  EXPECT_EQ(settled(engine).parked_blocks, 16);  // the whole pool
  Request fresh;
  fresh.prompt = long_prompt(100, 50);
  fresh.options.max_tokens = 8;
  fresh.options.ignore_eos = true;
  fresh.program = {9, {}, false};
  const Outcome o = collect(engine.submit(fresh));
  ASSERT_FALSE(o.error) << o.finish;
  EXPECT_EQ(o.tokens, alone(fresh));
  RetentionCounters c = settled(engine);
  EXPECT_EQ(c.guard_releases, 2);  // 7 blocks needed: programs 4 and 3, the latest arrivals, went
  EXPECT_EQ(c.parked, 2);
  // Programs 1 and 2 kept theirs.
  const Outcome o1 = collect(engine.submit(next_turn(firsts[0], outs[0], 1)));
  EXPECT_EQ(o1.stats.cached_tokens, 48);
  EXPECT_EQ(settled(engine).retained_hits, 1);
  expect_sound_pool(engine, 1);
}

TEST(ServingRetention, TheGuardKeepsParkedKvThatCouldNotMakeRoomAnyway) {
  EngineOptions opt = small_pool();
  opt.retention.hold_grace_seconds = 600;
  Engine engine(*fx().model, *fx().tok, opt);
  collect(engine.submit(first_turn(1, 30, true)));  // 4 blocks parked
  Request big;  // 10 blocks while it runs
  big.prompt = long_prompt(150, 31);
  big.options.max_tokens = 10;
  big.options.ignore_eos = true;
  Request next = big;  // 7 blocks: 2 are free beside the big one, 6 if program 1 were released
  next.prompt = long_prompt(100, 32);
  next.options.max_tokens = 8;
  auto h1 = engine.submit(big);
  auto h2 = engine.submit(next);
  EXPECT_EQ(collect(h1).tokens, alone(big));
  EXPECT_EQ(collect(h2).tokens, alone(next));  // it waited for the big one, not for program 1
  const RetentionCounters c = settled(engine);
  EXPECT_EQ(c.guard_releases, 0);
  EXPECT_EQ(c.parked, 1);
}

TEST(ServingRetention, ProgramFcfsRequestsMatchEachRunAloneUnderPreemption) {
  EngineOptions opt = exact_kv();
  opt.kv_block_size = 4;
  opt.kv_cache_tokens = 60;
  opt.scheduler.preempt = PreemptMode::Recompute;
  opt.retention.program_fcfs = true;
  opt.retention.tier = std::make_shared<memory::tiers::HostTier>(int64_t(64) << 20);
  Engine engine(*fx().model, *fx().tok, opt);
  std::vector<RequestHandle> hs;
  std::vector<Request> rs;
  const auto t0 = Clock::now();
  for (int i = 0; i < 6; ++i) {
    Request r = make_request(i, 16);
    // Programs arrive in the reverse of submission order.
    r.program = {uint64_t(i + 1), t0 - std::chrono::seconds(i), false};
    rs.push_back(r);
    hs.push_back(engine.submit(r));
  }
  for (size_t i = 0; i < hs.size(); ++i) {
    const Outcome o = collect(hs[i]);
    ASSERT_FALSE(o.error) << o.finish;
    EXPECT_EQ(o.tokens, alone(rs[i])) << "request " << i;
  }
  EXPECT_GT(engine.counters().scheduler.preemptions, 0);
  // Preempted turns of programs went to the tier (the prefix cache still
  // had their blocks when they resumed, so the tier was not needed back).
  EXPECT_GT(settled(engine).tier_puts, 0);
  expect_sound_pool(engine, 0);
}

Request logits_turn(std::vector<int32_t> prompt, uint64_t program) {
  Request r;
  r.prompt = std::move(prompt);
  r.options.max_tokens = 0;
  r.logits = LogitsOutput::Last;
  r.program = {program, {}, false};
  return r;
}

TEST(ServingRetention, ATurnRestoredFromTheHostTierGivesTheLogitsOfAColdRun) {
  EngineOptions opt = small_pool();
  auto tier = std::make_shared<memory::tiers::HostTier>(int64_t(64) << 20);
  opt.retention.tier = tier;
  Engine engine(*fx().model, *fx().tok, opt);
  const Request t1 = first_turn(1, 20, true);
  const Outcome o1 = collect(engine.submit(t1));
  engine.retain(1, 0);  // to the tier now
  const Request other = first_turn(2, 21, true);
  collect(engine.submit(other));
  engine.retain(2, 0);
  fill_pool(engine, 200);  // the prefix cache no longer has either
  EXPECT_EQ(settled(engine).tier_puts, 2);
  EXPECT_GT(tier->bytes(), 0);

  const Request t2 = logits_turn(next_turn(t1, o1, 1).prompt, 1);
  const Outcome warm = collect(engine.submit(t2));
  ASSERT_FALSE(warm.error) << warm.finish;
  EXPECT_EQ(warm.stats.restored_tokens, 48);
  EXPECT_EQ(warm.stats.cached_tokens, 48);
  ASSERT_EQ(warm.logits.size(), 1u);
  KvCache cache = fx().model->new_cache();
  const std::vector<float> cold = fx().model->forward(t2.prompt, cache);
  EXPECT_LT(rel_error(warm.logits[0].logits, cold), 1e-5);
  RetentionCounters c = settled(engine);
  EXPECT_EQ(c.tier_hits, 1);

  // Program 2's entry is no prefix of a different prompt: nothing restored.
  std::vector<int32_t> diverged = other.prompt;
  diverged[20] = int32_t((diverged[20] + 1) % 397);
  diverged.resize(70, 7);
  const Outcome d = collect(engine.submit(logits_turn(diverged, 2)));
  EXPECT_EQ(d.stats.restored_tokens, 0);
  EXPECT_EQ(settled(engine).tier_hits, 1);
  EXPECT_GT(settled(engine).tier_misses, 0);
  expect_sound_pool(engine, 0);
}

TEST(ServingRetention, ATurnWhoseKvIsInTheTierWaitsForRoomRatherThanRecomputing) {
  EngineOptions opt = small_pool();
  opt.scheduler.token_budget = 16;  // a first chunk of the turn would fit beside the running request
  opt.retention.tier = std::make_shared<memory::tiers::HostTier>(int64_t(64) << 20);
  Engine engine(*fx().model, *fx().tok, opt);
  const Request t1 = first_turn(1, 30, true);
  const Outcome o1 = collect(engine.submit(t1));
  engine.retain(1, 0);  // to the tier
  fill_pool(engine, 300);
  ASSERT_EQ(settled(engine).tier_puts, 1);

  // Another tenant's request holds 13 of the 16 blocks while it decodes.
  Request big;
  big.prompt = long_prompt(200, 31);
  big.options.max_tokens = 30;
  big.options.ignore_eos = true;
  const RequestHandle h = engine.submit(big);
  auto first = h.stream->next(std::chrono::seconds(60));
  ASSERT_TRUE(first && first->kind == StreamEvent::Kind::Token);

  // Program 1's next turn: its 64 tokens of KV are in the tier, with no room
  // for them in the pool now. It waits, and is then restored, not prefilled.
  const Request t2 = next_turn(t1, o1, 1);
  const Outcome o2 = collect(engine.submit(t2));
  ASSERT_FALSE(o2.error) << o2.finish;
  EXPECT_EQ(o2.tokens, alone(t2));
  EXPECT_EQ(o2.stats.restored_tokens, 48);
  EXPECT_EQ(o2.stats.cached_tokens, 48);
  const Outcome ob = collect(h);
  ASSERT_FALSE(ob.error) << ob.finish;
  EXPECT_EQ(ob.stats.preemptions, 0) << "the waiting turn never squeezed the running request out";
  EXPECT_EQ(settled(engine).tier_hits, 1);
  EXPECT_EQ(settled(engine).recomputed_tokens, int64_t(t2.prompt.size()) - 48);
  expect_sound_pool(engine, 0);
}

}  // namespace
}  // namespace mnemo::engine
