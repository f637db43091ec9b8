// The Engine facade: concurrent requests, chunked prefill, preemption,
// cancellation, shutdown and bad requests, against single-sequence runs.
#include <gtest/gtest.h>

#include <thread>

#include "tests/engine/serving_fixture.h"

namespace mnemo::engine {
namespace {

using namespace serving_testing;

void expect_same_as_alone(const EngineOptions& opt, int n, int max_tokens, int64_t* preemptions = nullptr) {
  Engine engine(*fx().model, *fx().tok, opt);
  std::vector<RequestHandle> hs;
  for (int i = 0; i < n; ++i) hs.push_back(engine.submit(make_request(i, max_tokens)));
  for (int i = 0; i < n; ++i) {
    const Outcome o = collect(hs[size_t(i)]);
    ASSERT_FALSE(o.error) << o.finish;
    EXPECT_EQ(o.tokens, alone(make_request(i, max_tokens))) << "request " << i;
    EXPECT_EQ(o.stats.prompt_tokens, int64_t(make_request(i, max_tokens).prompt.size()));
    EXPECT_EQ(o.stats.generated_tokens, int64_t(o.tokens.size()));
    if (!o.tokens.empty()) {
      EXPECT_EQ(o.stats.inter_token_seconds.size(), o.tokens.size() - 1);
    }
  }
  if (preemptions) *preemptions = engine.counters().scheduler.preemptions;
}

TEST(Serving, ConcurrentGreedyRequestsMatchEachRunAlone) {
  expect_same_as_alone(exact_kv(), 8, 12);
}

TEST(Serving, ChunkedPrefillUnderASmallTokenBudget) {
  EngineOptions opt = exact_kv();
  opt.scheduler.token_budget = 7;  // prompts of up to 26 tokens take several steps
  expect_same_as_alone(opt, 6, 8);
}

class Preemption : public ::testing::TestWithParam<PreemptMode> {};

TEST_P(Preemption, PreemptedRequestsResumeWithTheSameTokens) {
  EngineOptions opt = exact_kv();
  opt.kv_block_size = 4;
  opt.kv_cache_tokens = 60;  // six requests of up to 36 tokens cannot all fit
  opt.scheduler.preempt = GetParam();
  int64_t preemptions = 0;
  expect_same_as_alone(opt, 6, 16, &preemptions);
  EXPECT_GT(preemptions, 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, Preemption, ::testing::Values(PreemptMode::Recompute, PreemptMode::Swap),
                         [](const auto& info) { return info.param == PreemptMode::Swap ? "Swap" : "Recompute"; });

TEST(Serving, SeededSamplingIsReproducibleAcrossBatching) {
  Request r = make_request(2, 10);
  r.options.sampling.temperature = 1.0f;
  r.options.sampling.seed = 99;
  Engine engine(*fx().model, *fx().tok, exact_kv());
  auto h1 = engine.submit(r);
  auto other = engine.submit(make_request(4, 10));
  const Outcome a = collect(h1);
  collect(other);
  EXPECT_EQ(a.tokens, generate(*fx().model, *fx().tok, r.prompt, r.options).tokens);
}

TEST(Serving, CancelEndsTheStream) {
  Engine engine(*fx().model, *fx().tok, exact_kv());
  Request r = make_request(1, 50000);
  r.options.ignore_eos = true;
  auto h = engine.submit(r);
  ASSERT_TRUE(h.stream->next(std::chrono::seconds(30)));  // it is running
  engine.cancel(h.id);
  const Outcome o = collect(h);
  EXPECT_EQ(o.finish, "cancelled");
  engine.cancel(h.id);  // cancelling twice or a finished request is harmless
  engine.cancel(987654);
}

TEST(Serving, ShutdownEndsEveryStreamWithATerminalEvent) {
  std::vector<RequestHandle> hs;
  {
    EngineOptions opt = exact_kv();
    opt.scheduler.max_running = 2;
    Engine engine(*fx().model, *fx().tok, opt);
    for (int i = 0; i < 5; ++i) {
      Request r = make_request(i, 50000);
      r.options.ignore_eos = true;
      hs.push_back(engine.submit(r));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& h : hs) EXPECT_EQ(collect(h).finish, "shutdown");
}

TEST(Serving, BadRequestsGetAnErrorAndTheEngineKeepsServing) {
  EngineOptions opt = exact_kv();
  opt.kv_cache_tokens = 256;
  Engine engine(*fx().model, *fx().tok, opt);
  Request empty;
  EXPECT_NE(collect(engine.submit(empty)).finish.find("no tokens"), std::string::npos);
  Request bad = make_request(0, 4);
  bad.options.sampling.top_p = 0;
  EXPECT_NE(collect(engine.submit(bad)).finish.find("top_p"), std::string::npos);
  Request huge = make_request(0, 1000);
  EXPECT_NE(collect(engine.submit(huge)).finish.find("KV capacity"), std::string::npos);
  Request oov = make_request(0, 4);
  oov.prompt.push_back(400);
  EXPECT_NE(collect(engine.submit(oov)).finish.find("outside the vocabulary"), std::string::npos);
  const Outcome ok = collect(engine.submit(make_request(0, 4)));
  EXPECT_FALSE(ok.error);
  EXPECT_EQ(ok.tokens, alone(make_request(0, 4)));
}

TEST(Serving, StopStringsAndZeroMaxTokens) {
  Engine engine(*fx().model, *fx().tok, exact_kv());
  Request r = make_request(3, 0);
  const Outcome none = collect(engine.submit(r));
  EXPECT_EQ(none.finish, "length");
  EXPECT_TRUE(none.tokens.empty());
  // Stop on a piece of what greedy decoding produces.
  r.options.max_tokens = 20;
  const GenerateResult full = generate(*fx().model, *fx().tok, r.prompt, r.options);
  if (full.text.size() >= 4) {
    r.options.stop_strings = {full.text.substr(2, 2)};
    const Outcome o = collect(engine.submit(r));
    EXPECT_EQ(o.finish, "stop");
    EXPECT_EQ(o.text, full.text.substr(0, full.text.find(full.text.substr(2, 2))));
  }
}

}  // namespace
}  // namespace mnemo::engine
