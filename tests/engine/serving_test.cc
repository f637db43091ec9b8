// The Engine facade: concurrent requests, chunked prefill, preemption,
// cancellation, shutdown and bad requests, against single-sequence runs.
#include <gtest/gtest.h>

#include <thread>

#include "engine/generation/generate.h"
#include "engine/model/generator.h"
#include "engine/serving/engine.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::engine {
namespace {

struct Fixture {
  std::filesystem::path dir = testing::fresh_dir("serving");
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  Fixture() {
    GeneratorOptions o;
    o.hidden = 64, o.layers = 2, o.heads = 4, o.kv_heads = 2, o.intermediate = 96, o.vocab = 400, o.seed = 3;
    o.dtype = kernels::DType::F32;
    generate_model(o, dir);
    model = Model::load(dir);
    tok = std::make_unique<Tokenizer>(Tokenizer::load(dir / "tokenizer.json"));
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
};

Fixture& fx() {
  static Fixture f;
  return f;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text, finish;
  RequestStats stats;
  bool error = false;
};

Outcome collect(const RequestHandle& h) {
  Outcome o;
  for (;;) {
    auto e = h.stream->next(std::chrono::seconds(60));
    if (!e) {
      o.error = true;
      o.finish = "timeout";
      return o;
    }
    o.text += e->text;
    if (e->kind == StreamEvent::Kind::Token) o.tokens.push_back(e->token);
    if (e->kind == StreamEvent::Kind::Done) {
      o.finish = e->finish_reason;
      o.stats = e->stats;
      return o;
    }
    if (e->kind == StreamEvent::Kind::Error) {
      o.error = true;
      o.finish = e->error;
      return o;
    }
  }
}

Request make_request(int i, int max_tokens) {
  Request r;
  for (int j = 0; j < 5 + 3 * i; ++j) r.prompt.push_back(int32_t((i * 31 + j * 7) % 250));
  r.options.max_tokens = max_tokens;
  return r;
}

std::vector<int32_t> alone(const Request& r) {
  return generate(*fx().model, *fx().tok, r.prompt, r.options).tokens;
}

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
  expect_same_as_alone(EngineOptions{}, 8, 12);
}

TEST(Serving, ChunkedPrefillUnderASmallTokenBudget) {
  EngineOptions opt;
  opt.scheduler.token_budget = 7;  // prompts of up to 26 tokens take several steps
  expect_same_as_alone(opt, 6, 8);
}

class Preemption : public ::testing::TestWithParam<PreemptMode> {};

TEST_P(Preemption, PreemptedRequestsResumeWithTheSameTokens) {
  EngineOptions opt;
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
  Engine engine(*fx().model, *fx().tok);
  auto h1 = engine.submit(r);
  auto other = engine.submit(make_request(4, 10));
  const Outcome a = collect(h1);
  collect(other);
  EXPECT_EQ(a.tokens, generate(*fx().model, *fx().tok, r.prompt, r.options).tokens);
}

TEST(Serving, CancelEndsTheStream) {
  Engine engine(*fx().model, *fx().tok);
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
    EngineOptions opt;
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
  EngineOptions opt;
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
  Engine engine(*fx().model, *fx().tok);
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
