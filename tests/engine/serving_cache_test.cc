// The Engine over the paged KV cache: prefix-cache hits give the logits of a
// cold run, tenants do not share cached blocks, prompt logits come back
// through the stream, and a logits constraint steers sampling.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <algorithm>
#include <cmath>

#include "tests/engine/serving_fixture.h"

namespace mnemo::engine {
namespace {

using namespace serving_testing;

Request logits_request(std::vector<int32_t> prompt, LogitsOutput mode, uint64_t salt = 0) {
  Request r;
  r.prompt = std::move(prompt);
  r.options.max_tokens = 0;
  r.logits = mode;
  r.cache_salt = salt;
  return r;
}

TEST(ServingCache, PrefixCacheHitGivesTheLogitsOfAColdRun) {
  Engine engine(*fx().model, *fx().tok, exact_kv());
  const std::vector<int32_t> prompt = long_prompt(70, 1);  // four whole blocks of 16, and 6 more tokens
  const Outcome cold = collect(engine.submit(logits_request(prompt, LogitsOutput::Last)));
  ASSERT_FALSE(cold.error) << cold.finish;
  EXPECT_EQ(cold.stats.cached_tokens, 0);
  const Outcome warm = collect(engine.submit(logits_request(prompt, LogitsOutput::Last)));
  ASSERT_FALSE(warm.error) << warm.finish;
  EXPECT_EQ(warm.stats.cached_tokens, 64);
  ASSERT_EQ(cold.logits.size(), 1u);
  ASSERT_EQ(warm.logits.size(), 1u);
  EXPECT_EQ(warm.logits[0].first_row, 69);
  EXPECT_LT(rel_error(warm.logits[0].logits, cold.logits[0].logits), 1e-5);

  // Both agree with a plain forward pass over a contiguous cache.
  KvCache cache = fx().model->new_cache();
  const std::vector<float> ref = fx().model->forward(prompt, cache);
  EXPECT_LT(rel_error(cold.logits[0].logits, ref), 1e-5);

  // A prompt sharing the first 40 tokens reuses the two whole blocks among them.
  std::vector<int32_t> branch(prompt.begin(), prompt.begin() + 40);
  branch.push_back(5);
  branch.push_back(6);
  const Outcome b = collect(engine.submit(logits_request(branch, LogitsOutput::Last)));
  EXPECT_EQ(b.stats.cached_tokens, 32);
  KvCache c2 = fx().model->new_cache();
  EXPECT_LT(rel_error(b.logits[0].logits, fx().model->forward(branch, c2)), 1e-5);
  // Counters are published at the end of the step that finished the
  // response, which may come just after the response reached us.
  auto counters = engine.counters();
  for (int i = 0; i < 500 && counters.scheduler.prefix_hits < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    counters = engine.counters();
  }
  EXPECT_EQ(counters.scheduler.prefix_hits, 2);
  EXPECT_EQ(counters.scheduler.cached_tokens, 96);
}

TEST(ServingCache, TenantsWithDifferentSaltsShareNothing) {
  Engine engine(*fx().model, *fx().tok, exact_kv());
  const std::vector<int32_t> prompt = long_prompt(40, 2);
  collect(engine.submit(logits_request(prompt, LogitsOutput::None, 7)));
  EXPECT_EQ(collect(engine.submit(logits_request(prompt, LogitsOutput::None, 8))).stats.cached_tokens, 0);
  EXPECT_EQ(collect(engine.submit(logits_request(prompt, LogitsOutput::None, 7))).stats.cached_tokens, 32);
}

TEST(ServingCache, GeneratedTokensAreCachedForTheNextTurn) {
  // A second turn's prompt is the first turn's prompt and reply plus more:
  // the reply's blocks, computed while decoding, are reused.
  Engine engine(*fx().model, *fx().tok, exact_kv());
  Request turn1;
  turn1.prompt = long_prompt(20, 3);
  turn1.options.max_tokens = 30;
  turn1.options.ignore_eos = true;
  const Outcome o1 = collect(engine.submit(turn1));
  ASSERT_EQ(o1.tokens.size(), 30u);
  Request turn2;
  turn2.prompt = turn1.prompt;
  turn2.prompt.insert(turn2.prompt.end(), o1.tokens.begin(), o1.tokens.end());
  turn2.prompt.push_back(9);
  turn2.options.max_tokens = 4;
  const Outcome o2 = collect(engine.submit(turn2));
  // 50 tokens were in the cache (the last sampled one never was): three whole blocks.
  EXPECT_EQ(o2.stats.cached_tokens, 48);
  EXPECT_EQ(o2.tokens, alone(turn2));
}

TEST(ServingCache, AllPromptLogitsMatchAForwardPass) {
  EngineOptions opt = exact_kv();
  opt.scheduler.token_budget = 24;  // the prompt arrives in chunks
  Engine engine(*fx().model, *fx().tok, opt);
  const std::vector<int32_t> prompt = long_prompt(50, 4);
  const Outcome o = collect(engine.submit(logits_request(prompt, LogitsOutput::All)));
  ASSERT_FALSE(o.error) << o.finish;
  KvCache cache = fx().model->new_cache();
  const std::vector<float> ref = fx().model->forward(prompt, cache, true);
  const size_t V = size_t(fx().model->config().vocab_size);
  size_t rows = 0;
  for (const StreamEvent& e : o.logits) {
    ASSERT_EQ(e.first_row, int64_t(rows));
    for (size_t r = 0; r < e.logits.size() / V; ++r, ++rows)
      EXPECT_LT(rel_error(std::span(e.logits).subspan(r * V, V), std::span(ref).subspan(rows * V, V)), 1e-5)
          << "row " << rows;
  }
  EXPECT_EQ(rows, prompt.size());
  EXPECT_GT(o.logits.size(), 1u);
}

// Allows exactly one token at each step, then is done.
class ScriptConstraint : public LogitsConstraint {
 public:
  explicit ScriptConstraint(std::vector<int32_t> script) : script_(std::move(script)) {}
  void mask(std::span<float> logits) const override {
    for (size_t i = 0; i < logits.size(); ++i)
      if (int32_t(i) != script_[pos_]) logits[i] = -INFINITY;
  }
  void accept(int32_t token) override {
    EXPECT_EQ(token, script_[pos_]);
    ++pos_;
  }
  bool done() const override { return pos_ == script_.size(); }

 private:
  std::vector<int32_t> script_;
  size_t pos_ = 0;
};

TEST(ServingCache, AConstraintDecidesTheTokensAndEndsTheRequest) {
  Engine engine(*fx().model, *fx().tok, exact_kv());
  Request r = make_request(2, 100);
  r.options.sampling.temperature = 1.0f;
  r.options.sampling.seed = 5;
  const std::vector<int32_t> script = {11, 22, 33, 44, fx().model->config().eos_token_ids.at(0), 55};
  r.constraint = std::make_shared<ScriptConstraint>(script);
  const Outcome o = collect(engine.submit(r));
  EXPECT_EQ(o.tokens, script);  // EOS inside a constrained text does not stop it
  EXPECT_EQ(o.finish, "stop");
}

}  // namespace
}  // namespace mnemo::engine
