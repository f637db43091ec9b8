// Requests that start from a KV snapshot (Request::start_kv): an
// uncompressed prefix gives the logits and tokens of a normal run; a
// compacted one continues at true positions, exactly as the same cache
// continued by hand; a snapshot that is not a prefix of the prompt is
// ignored; one larger than the pool is refused; requests waiting for room
// with one wait and then run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tests/engine/serving_fixture.h"

namespace mnemo::engine {
namespace {

using namespace serving_testing;

// A cache shaped like the Engine's (16-token blocks) for building snapshots.
kv::KvConfig cache_config(int64_t bytes = int64_t(16) << 20) {
  const ModelConfig& c = fx().model->config();
  kv::KvConfig k;
  k.layers = c.num_layers;
  k.kv_heads = c.num_kv_heads;
  k.head_dim = c.head_dim;
  k.block_size = 16;
  k.bytes_budget = bytes;
  return k;
}

// Appends tokens to seq in one forward pass; returns the last row's logits.
std::vector<float> run(kv::KvCacheManager& cache, kv::SeqId seq, std::span<const int32_t> tokens) {
  EXPECT_TRUE(cache.append(seq, tokens));
  Model::BatchItem b;
  b.tokens = tokens;
  b.paged = &cache;
  b.seq = seq;
  std::vector<float> logits = fx().model->forward_batch(std::span(&b, 1));
  cache.commit(seq);
  return logits;
}

std::shared_ptr<const std::vector<uint8_t>> snapshot(std::span<const int32_t> prefix, uint64_t salt = 0) {
  kv::KvCacheManager cache(cache_config());
  const kv::SeqId s = cache.create(salt);
  run(cache, s, prefix);
  return std::make_shared<const std::vector<uint8_t>>(cache.export_sequence(s));
}

Request request(std::vector<int32_t> prompt, int max_tokens, std::shared_ptr<const std::vector<uint8_t>> kv = nullptr) {
  Request r;
  r.prompt = std::move(prompt);
  r.options.max_tokens = max_tokens;
  r.options.ignore_eos = true;
  r.logits = LogitsOutput::Last;
  r.start_kv = std::move(kv);
  return r;
}

TEST(ServingStartKv, UncompressedSnapshotGivesTheLogitsAndTokensOfANormalRun) {
  const std::vector<int32_t> prompt = long_prompt(70, 1);
  Outcome normal, started;
  {
    Engine engine(*fx().model, *fx().tok);
    normal = collect(engine.submit(request(prompt, 8)));
  }
  {
    // A fresh engine: nothing in its prefix cache, so only the snapshot can supply the prefix.
    Engine engine(*fx().model, *fx().tok);
    started = collect(engine.submit(request(prompt, 8, snapshot(std::span(prompt).first(40)))));
  }
  ASSERT_FALSE(normal.error) << normal.finish;
  ASSERT_FALSE(started.error) << started.finish;
  EXPECT_EQ(normal.stats.cached_tokens, 0);
  EXPECT_EQ(started.stats.cached_tokens, 40);
  EXPECT_EQ(started.stats.prompt_tokens, 70);
  ASSERT_EQ(started.logits.size(), 1u);
  EXPECT_EQ(started.logits[0].first_row, 69);
  EXPECT_LT(rel_error(started.logits[0].logits, normal.logits[0].logits), 1e-5);
  EXPECT_EQ(started.tokens, normal.tokens);
  EXPECT_EQ(started.tokens.size(), 8u);
}

TEST(ServingStartKv, CompactedSnapshotContinuesAtTruePositions) {
  const std::vector<int32_t> prompt = long_prompt(70, 2);
  const std::span<const int32_t> prefix = std::span(prompt).first(48), rest = std::span(prompt).subspan(48);
  kv::KvCacheManager cache(cache_config());
  const kv::SeqId s = cache.create();
  run(cache, s, prefix);
  // Uneven per-head selections: head 0 keeps every other slot, head 1 the
  // first 4 and the last 12 (a hole after them up to the longer head).
  const int64_t heads = cache.config().kv_heads;
  ASSERT_EQ(heads, 2);
  std::vector<std::vector<int32_t>> keep(2);
  for (int32_t i = 0; i < 48; i += 2) keep[0].push_back(i);
  for (int32_t i = 0; i < 4; ++i) keep[1].push_back(i);
  for (int32_t i = 36; i < 48; ++i) keep[1].push_back(i);
  for (int64_t l = 0; l < cache.config().layers; ++l) ASSERT_TRUE(cache.compact(s, l, keep));
  auto kv = std::make_shared<const std::vector<uint8_t>>(cache.export_sequence(s));
  // The reference: the same compacted cache continued by hand.
  const std::vector<float> expected = run(cache, s, rest);

  Engine engine(*fx().model, *fx().tok);
  const Outcome started = collect(engine.submit(request(prompt, 6, kv)));
  ASSERT_FALSE(started.error) << started.finish;
  EXPECT_EQ(started.stats.cached_tokens, 48);
  ASSERT_EQ(started.logits.size(), 1u);
  EXPECT_LT(rel_error(started.logits[0].logits, expected), 1e-5);
  EXPECT_EQ(started.tokens.size(), 6u);
  // Evicting mattered: the full prefix gives other logits.
  const Outcome normal = collect(engine.submit(request(prompt, 0)));
  ASSERT_EQ(normal.logits.size(), 1u);
  EXPECT_GT(rel_error(started.logits[0].logits, normal.logits[0].logits), 1e-3);
}

TEST(ServingStartKv, SnapshotThatIsNotAPrefixIsIgnored) {
  const std::vector<int32_t> prompt = long_prompt(60, 3);
  std::vector<int32_t> other(prompt.begin(), prompt.begin() + 32);
  other[17] = (other[17] + 1) % 397;
  Engine engine(*fx().model, *fx().tok);
  const Outcome normal = collect(engine.submit(request(prompt, 4)));
  Engine engine2(*fx().model, *fx().tok);
  const Outcome mismatched = collect(engine2.submit(request(prompt, 4, snapshot(other))));
  ASSERT_FALSE(mismatched.error) << mismatched.finish;
  EXPECT_EQ(mismatched.stats.cached_tokens, 0);
  EXPECT_EQ(mismatched.tokens, normal.tokens);
  EXPECT_LT(rel_error(mismatched.logits[0].logits, normal.logits[0].logits), 1e-5);
  // Another tenant's snapshot (salt) and one covering the whole prompt are ignored too.
  Engine engine3(*fx().model, *fx().tok);
  const Outcome salted = collect(engine3.submit(request(prompt, 4, snapshot(std::span(prompt).first(32), 7))));
  EXPECT_EQ(salted.stats.cached_tokens, 0);
  EXPECT_EQ(salted.tokens, normal.tokens);
  const Outcome whole = collect(engine3.submit(request(prompt, 4, snapshot(prompt))));
  ASSERT_FALSE(whole.error) << whole.finish;
  EXPECT_EQ(whole.tokens, normal.tokens);
  // Bytes that are no snapshot at all.
  const Outcome junk = collect(engine3.submit(request(prompt, 4, std::make_shared<const std::vector<uint8_t>>(100, 7))));
  ASSERT_FALSE(junk.error) << junk.finish;
  EXPECT_EQ(junk.tokens, normal.tokens);
}

TEST(ServingStartKv, SnapshotLargerThanThePoolIsRefused) {
  EngineOptions opt;
  opt.kv_cache_tokens = 64;
  Engine engine(*fx().model, *fx().tok, opt);
  const std::vector<int32_t> prompt = long_prompt(110, 4);
  const Outcome o = collect(engine.submit(request(prompt, 2, snapshot(std::span(prompt).first(100)))));
  ASSERT_TRUE(o.error);
  EXPECT_NE(o.finish.find("start_kv snapshot holds 100 slots"), std::string::npos) << o.finish;
  // The engine keeps serving.
  const Outcome ok = collect(engine.submit(request(long_prompt(20, 5), 2)));
  EXPECT_FALSE(ok.error) << ok.finish;
}

TEST(ServingStartKv, RequestsWaitForRoomForTheirSnapshot) {
  // Room for one of them at a time: 80 snapshot slots + 10 prompt + 10 generated each.
  EngineOptions opt;
  opt.kv_cache_tokens = 160;
  Engine engine(*fx().model, *fx().tok, opt);
  const std::vector<int32_t> prompt = long_prompt(90, 6);
  auto kv = snapshot(std::span(prompt).first(80));
  std::vector<RequestHandle> hs;
  for (int i = 0; i < 3; ++i) hs.push_back(engine.submit(request(prompt, 10, kv)));
  std::vector<Outcome> outs;
  for (auto& h : hs) outs.push_back(collect(h));
  for (const Outcome& o : outs) {
    ASSERT_FALSE(o.error) << o.finish;
    EXPECT_EQ(o.finish, "length");
    EXPECT_EQ(o.tokens, outs[0].tokens);
  }
  engine.inspect_kv([](const kv::KvCacheManager& c) { c.check_invariants(); });
}

}  // namespace
}  // namespace mnemo::engine
