// OpenAI's sampler features through the Engine: logprobs on the token stream,
// logit_bias and the frequency/presence penalties, and their validation at
// submit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tests/engine/serving_fixture.h"

namespace mnemo::engine {
namespace {

using namespace serving_testing;

struct Tokens {
  std::vector<int32_t> ids;
  std::vector<std::optional<TokenLogprobs>> logprobs;  // one per Token event
  std::string finish;
};

Tokens run(Engine& engine, const Request& r) {
  const RequestHandle h = engine.submit(r);
  Tokens out;
  for (;;) {
    auto e = h.stream->next(std::chrono::seconds(60));
    if (!e) {
      out.finish = "timeout";
      return out;
    }
    if (e->kind == StreamEvent::Kind::Token) {
      out.ids.push_back(e->token);
      out.logprobs.push_back(e->logprobs);
    }
    if (e->kind == StreamEvent::Kind::Done) {
      out.finish = e->finish_reason;
      return out;
    }
    if (e->kind == StreamEvent::Kind::Error) {
      out.finish = "error: " + e->error;
      return out;
    }
  }
}

Request greedy(int i, int max_tokens) {
  Request r = make_request(i, max_tokens);
  r.options.ignore_eos = true;
  return r;
}

TEST(ServingSampling, LogprobsComeWithEveryTokenAndDoNotChangeGreedyTokens) {
  Engine engine(*fx().model, *fx().tok, exact_kv());
  const Request plain = greedy(3, 12);
  Request asked = plain;
  asked.options.sampling.logprobs = true;
  asked.options.sampling.top_logprobs = 5;
  const Tokens off = run(engine, plain), on = run(engine, asked);
  ASSERT_EQ(on.finish, "length");
  EXPECT_EQ(on.ids, off.ids);
  ASSERT_EQ(on.ids.size(), 12u);
  ASSERT_EQ(on.logprobs.size(), on.ids.size());
  for (const auto& lp : off.logprobs) EXPECT_FALSE(lp.has_value());
  for (size_t i = 0; i < on.ids.size(); ++i) {
    ASSERT_TRUE(on.logprobs[i].has_value()) << "token " << i;
    const TokenLogprobs& lp = *on.logprobs[i];
    EXPECT_EQ(lp.chosen.token, on.ids[i]);
    EXPECT_LE(lp.chosen.logprob, 0.0f);
    ASSERT_EQ(lp.top.size(), 5u);
    // Greedy takes the most likely token: it heads the alternatives.
    EXPECT_EQ(lp.top[0].token, on.ids[i]);
    EXPECT_FLOAT_EQ(lp.top[0].logprob, lp.chosen.logprob);
    for (size_t k = 1; k < lp.top.size(); ++k) EXPECT_GE(lp.top[k - 1].logprob, lp.top[k].logprob);
  }
}

TEST(ServingSampling, FirstTokenLogprobsEqualALogSoftmaxOfTheModelsRow) {
  Request r = greedy(1, 1);
  r.options.sampling.logprobs = true;
  r.options.sampling.top_logprobs = 20;
  // Temperature and truncation do not move the reported numbers (logprobs.h).
  r.options.sampling.temperature = 0.7f;
  r.options.sampling.top_k = 3;
  r.options.sampling.seed = 4;
  Engine engine(*fx().model, *fx().tok, exact_kv());
  const Tokens t = run(engine, r);
  ASSERT_EQ(t.logprobs.size(), 1u);
  ASSERT_TRUE(t.logprobs[0]);

  KvCache cache = fx().model->new_cache(int64_t(r.prompt.size()) + 1);
  const std::vector<float> row = fx().model->forward(r.prompt, cache);
  long double sum = 0;
  for (float x : row) sum += std::exp((long double)x);
  auto ref = [&](int32_t tok) { return double(std::log(std::exp((long double)row[size_t(tok)]) / sum)); };
  const TokenLogprobs& lp = *t.logprobs[0];
  EXPECT_NEAR(lp.chosen.logprob, ref(t.ids[0]), 1e-4);
  ASSERT_EQ(lp.top.size(), 20u);
  std::vector<int32_t> order(row.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int32_t(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[size_t(a)] > row[size_t(b)]; });
  for (size_t k = 0; k < 20; ++k) {
    EXPECT_EQ(lp.top[k].token, order[k]);
    EXPECT_NEAR(lp.top[k].logprob, ref(order[k]), 1e-4);
  }
  // top_k = 3: the drawn token is one of the three most likely.
  EXPECT_LT(std::find(order.begin(), order.end(), t.ids[0]) - order.begin(), 3);
}

TEST(ServingSampling, LogitBiasBansAndForcesTokens) {
  Engine engine(*fx().model, *fx().tok, exact_kv());
  const Tokens plain = run(engine, greedy(2, 8));
  ASSERT_EQ(plain.ids.size(), 8u);

  Request ban = greedy(2, 8);
  for (int32_t t : plain.ids) ban.options.sampling.logit_bias[t] = -100.0f;
  const Tokens banned = run(engine, ban);
  ASSERT_EQ(banned.ids.size(), 8u);
  for (int32_t t : banned.ids) EXPECT_EQ(std::count(plain.ids.begin(), plain.ids.end(), t), 0) << t;

  Request force = greedy(2, 8);
  force.options.sampling.temperature = 1.0f;
  force.options.sampling.seed = 9;
  force.options.sampling.logit_bias[123] = 100.0f;
  force.options.sampling.logprobs = true;
  const Tokens forced = run(engine, force);
  EXPECT_EQ(forced.ids, std::vector<int32_t>(8, 123));
  // The reported distribution includes the bias: the forced token is certain.
  for (const auto& lp : forced.logprobs) EXPECT_NEAR(lp->chosen.logprob, 0.0f, 1e-4);
}

TEST(ServingSampling, PenaltiesCountGeneratedTokensNotThePrompt) {
  Engine engine(*fx().model, *fx().tok, exact_kv());
  // A prompt that ends with what greedy decoding would say next, so the
  // tokens greedy picks are in the prompt.
  Request plain = greedy(5, 16);
  const Tokens first = run(engine, plain);
  plain.prompt.insert(plain.prompt.end(), first.ids.begin(), first.ids.begin() + 6);
  const Tokens base = run(engine, plain);
  ASSERT_EQ(base.ids.size(), 16u);
  ASSERT_NE(std::find(plain.prompt.begin(), plain.prompt.end(), base.ids[0]), plain.prompt.end())
      << "the test needs greedy's first token to be in the prompt";

  Request r = plain;
  r.options.sampling.frequency_penalty = 2.0f;
  r.options.sampling.presence_penalty = 2.0f;
  const Tokens t = run(engine, r);
  // Nothing generated yet: the first token is the unpenalized one.
  EXPECT_EQ(t.ids[0], base.ids[0]);
  // Afterwards the penalties bite, the same way as in generate().
  EXPECT_NE(t.ids, base.ids);
  EXPECT_EQ(t.ids, alone(r));
}

TEST(ServingSampling, BadSamplerParametersAreAnErrorEventNamingThem) {
  Engine engine(*fx().model, *fx().tok, exact_kv());
  Request r = greedy(0, 4);
  r.options.sampling.logit_bias[400] = 1.0f;  // the fixture's vocabulary has 400 tokens
  EXPECT_EQ(run(engine, r).finish, "error: logit_bias token 400 is outside the vocabulary of 400");
  r = greedy(0, 4);
  r.options.sampling.presence_penalty = 3.0f;
  EXPECT_EQ(run(engine, r).finish, "error: presence_penalty must be in [-2, 2]");
  r = greedy(0, 4);
  r.options.sampling.top_logprobs = 2;
  EXPECT_EQ(run(engine, r).finish, "error: top_logprobs requires logprobs");
}

}  // namespace
}  // namespace mnemo::engine
