// A seeded random workload through the Engine under a KV pool far too small
// for it: shared prefixes, chunked prefill, preemption (both modes), random
// cancels. Every finished request must equal its single-sequence run, a
// cancelled one a prefix of it, and afterwards the pool must be consistent
// with no block left referenced.
#include <gtest/gtest.h>

#include <random>

#include "tests/engine/serving_fixture.h"

namespace mnemo::engine {
namespace {

using namespace serving_testing;

class ServingProperty : public ::testing::TestWithParam<PreemptMode> {};

TEST_P(ServingProperty, RandomWorkloadUnderATightKvBudget) {
  std::mt19937 rng(GetParam() == PreemptMode::Swap ? 11 : 12);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<std::vector<int32_t>> bases;
  for (int b = 0; b < 3; ++b) {
    std::vector<int32_t> p;
    for (int j = 0, n = uniform(8, 40); j < n; ++j) p.push_back(int32_t(uniform(0, 399)));
    bases.push_back(p);
  }
  const int N = 48;
  std::vector<Request> reqs;
  for (int i = 0; i < N; ++i) {
    Request r;
    r.prompt = bases[size_t(uniform(0, 2))];
    for (int j = 0, n = uniform(1, 12); j < n; ++j) r.prompt.push_back(int32_t(uniform(0, 399)));
    r.options.max_tokens = uniform(1, 20);
    r.options.ignore_eos = uniform(0, 1) == 1;
    reqs.push_back(r);
  }

  EngineOptions opt = exact_kv();
  opt.kv_block_size = 4;
  opt.kv_cache_tokens = 96;  // about two requests at a time
  opt.scheduler.token_budget = uniform(8, 40);
  opt.scheduler.preempt = GetParam();
  opt.scheduler.swap_bytes = 64 << 10;  // some swaps, then recompute when host memory is full
  Engine engine(*fx().model, *fx().tok, opt);

  std::vector<RequestHandle> hs;
  std::vector<int> cancel_after;  // events to read before cancelling; -1: never
  for (int i = 0; i < N; ++i) {
    hs.push_back(engine.submit(reqs[size_t(i)]));
    cancel_after.push_back(uniform(0, 4) == 0 ? uniform(0, 5) : -1);
  }
  int finished = 0, cancelled = 0;
  for (int i = 0; i < N; ++i) {
    Outcome o, rest;
    bool ended = false;
    if (cancel_after[size_t(i)] >= 0) {
      for (int k = 0; k < cancel_after[size_t(i)] && !ended; ++k) {
        auto e = hs[size_t(i)].stream->next(std::chrono::seconds(60));
        ASSERT_TRUE(e);
        if (e->kind == StreamEvent::Kind::Token) o.tokens.push_back(e->token);
        ended = e->kind == StreamEvent::Kind::Done || e->kind == StreamEvent::Kind::Error;
        if (ended) rest.finish = e->kind == StreamEvent::Kind::Done ? e->finish_reason : e->error;
        rest.error = e->kind == StreamEvent::Kind::Error;
      }
      engine.cancel(hs[size_t(i)].id);
    }
    if (!ended) rest = collect(hs[size_t(i)]);
    ASSERT_FALSE(rest.error) << "request " << i << ": " << rest.finish;
    o.tokens.insert(o.tokens.end(), rest.tokens.begin(), rest.tokens.end());
    const std::vector<int32_t> want = alone(reqs[size_t(i)]);
    if (rest.finish == "cancelled") {
      ++cancelled;
      ASSERT_LE(o.tokens.size(), want.size()) << "request " << i;
      EXPECT_TRUE(std::equal(o.tokens.begin(), o.tokens.end(), want.begin())) << "request " << i;
    } else {
      ++finished;
      EXPECT_EQ(o.tokens, want) << "request " << i << " finished with " << rest.finish;
    }
  }
  EXPECT_GT(finished, N / 2);
  const EngineCounters c = engine.counters();
  EXPECT_GT(c.scheduler.preemptions, 0);
  EXPECT_GT(c.scheduler.prefix_hits, 0);
  if (GetParam() == PreemptMode::Swap) {
    EXPECT_GT(c.scheduler.swaps_out, 0);
    EXPECT_GT(c.scheduler.swaps_in, 0);
  }
  EXPECT_EQ(c.scheduler.swapped_bytes, 0);
  engine.inspect_kv([](const kv::KvCacheManager& kv) {
    kv.check_invariants();
    EXPECT_EQ(kv.num_sequences(), 0u);
    for (int64_t l = 0; l < kv.config().layers; ++l) {
      const kv::PoolStats s = kv.stats(l);
      EXPECT_EQ(s.used, 0) << "layer " << l;
      EXPECT_EQ(s.pinned, 0);
      EXPECT_EQ(s.free, s.blocks);
    }
  });
  RecordProperty("cancelled", cancelled);
}

INSTANTIATE_TEST_SUITE_P(Modes, ServingProperty, ::testing::Values(PreemptMode::Recompute, PreemptMode::Swap),
                         [](const auto& info) { return info.param == PreemptMode::Swap ? "Swap" : "Recompute"; });

}  // namespace
}  // namespace mnemo::engine
