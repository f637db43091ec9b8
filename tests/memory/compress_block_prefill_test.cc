// The block-wise prefill driver: bounded peak KV over a history 20x the
// budget, full KV equal to a plain forward, generation after compaction at
// true positions.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

#include <spdlog/sinks/ostream_sink.h>

#include "engine/model/kv_cache.h"
#include "memory/compress/block_prefill.h"
#include "memory/compress/layer_budgets.h"
#include "memory/compress/log.h"
#include "memory/compress/policies.h"
#include "tests/memory/compress_test_model.h"

namespace mnemo::memory::compress {
namespace {

using engine::kv::KvCacheManager;
using engine::kv::SeqId;
using testing::history;
using testing::make_cache;
using testing::model;

PolicyOptions options_for_tests() {
  PolicyOptions o;
  o.sinks = 4;
  o.window = 16;
  o.instruction = {3, 4, 5};
  o.text = history(24, 9);
  return o;
}

int64_t blocks_for(int64_t slots) { return (slots + 15) / 16; }

struct Case {
  const char* policy;
  bool head_wise;
};

class BoundedPeak : public ::testing::TestWithParam<Case> {};

// A history 20x the budget in a pool that could not hold a tenth of it: the
// peak stays within budget + one block (whole blocks; head-wise also the
// holes of heads that kept fewer than the longest), whatever the policy.
TEST_P(BoundedPeak, HistoryOf20xTheBudget) {
  const Case c = GetParam();
  const std::vector<int64_t> budgets = layer_budgets(std::vector<double>{0.2, 0.6}, 64);  // {..} summing to 128
  ASSERT_EQ(budgets[0] + budgets[1], 128);
  auto cache = make_cache(model(), 24);
  const SeqId s = cache.create();
  auto policy = make_policy(c.policy, options_for_tests());
  BlockPrefillOptions bo;
  bo.block_tokens = 32;
  bo.layer_budget = budgets;
  bo.head_wise = c.head_wise;
  const int64_t n = 20 * 64;
  const auto r = block_prefill(model(), cache, s, history(n), *policy, bo);

  const int64_t bpb = cache.bytes_per_block(), heads = 2;
  int64_t bound = 0;
  for (int64_t l = 0; l < 2; ++l) {
    const int64_t b = budgets[size_t(l)];
    // Head-wise: the longest head may hold up to the layer's whole share.
    bound += blocks_for((c.head_wise ? b * heads : b) + bo.block_tokens) * bpb;
    int64_t kept = 0;
    for (int64_t h = 0; h < heads; ++h) {
      kept += r.kept[size_t(l)][size_t(h)];
      if (!c.head_wise) {
        EXPECT_EQ(r.kept[size_t(l)][size_t(h)], b);
      }
    }
    EXPECT_EQ(kept, b * heads) << "layer " << l;
  }
  EXPECT_LE(r.peak_kv_bytes, bound);
  EXPECT_GE(r.peak_kv_bytes, r.final_kv_bytes);
  EXPECT_LT(r.peak_kv_bytes, n * 2 * bpb / 16 / 5) << "a fifth of the full history's KV";
  EXPECT_EQ(r.compactions, n / 32);  // after every block: layer 1's budget is under one block
  EXPECT_EQ(cache.tokens(s).size(), size_t(n));
  EXPECT_GT(r.prefill_seconds, 0.0);
  EXPECT_GT(r.compaction_seconds, 0.0);
  cache.check_invariants();
}

INSTANTIATE_TEST_SUITE_P(Policies, BoundedPeak,
                         ::testing::Values(Case{"streaming", true}, Case{"streaming", false}, Case{"snapkv", true},
                                           Case{"snapkv", false}, Case{"h2o", true}, Case{"h2o", false},
                                           Case{"keydiff", true}, Case{"keydiff", false}, Case{"patched", true},
                                           Case{"patched", false}),
                         [](const auto& info) {
                           return std::string(info.param.policy) + (info.param.head_wise ? "_headwise" : "_uniform");
                         });

double rel_error(std::span<const float> a, std::span<const float> b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return num / den;
}

TEST(CompressBlockPrefill, FullKeepsEverythingAndMatchesAPlainForward) {
  auto cache = make_cache(model(), 32);
  const SeqId s = cache.create();
  auto policy = make_policy("full");
  BlockPrefillOptions bo;
  bo.block_tokens = 64;  // budgets are not needed: full never evicts
  const auto h = history(300);
  const auto r = block_prefill(model(), cache, s, h, *policy, bo);
  engine::KvCache plain = model().new_cache();
  const auto want = model().forward(h, plain);
  ASSERT_EQ(r.logits.size(), want.size());
  EXPECT_LT(rel_error(r.logits, want), 1e-4);
  EXPECT_EQ(r.compactions, 0);
  for (const auto& layer : r.kept)
    for (int64_t k : layer) EXPECT_EQ(k, 300);
  EXPECT_EQ(r.peak_kv_bytes, 2 * blocks_for(300) * cache.bytes_per_block());
  EXPECT_EQ(r.final_kv_bytes, r.peak_kv_bytes);
  EXPECT_FALSE(cache.compacted(s));
}

// After compaction the sequence still counts every token: the next token
// sits at position n, not at the number of slots kept.
class ContinuesAfterCompaction : public ::testing::TestWithParam<const char*> {};

TEST_P(ContinuesAfterCompaction, GenerationRunsAtTruePositions) {
  auto cache = make_cache(model(), 32);
  const SeqId s = cache.create();
  auto policy = make_policy(GetParam(), options_for_tests());
  BlockPrefillOptions bo;
  bo.block_tokens = 32;
  bo.layer_budget = {40, 24};
  const int64_t n = 200;
  const auto r = block_prefill(model(), cache, s, history(n), *policy, bo);
  ASSERT_GT(r.compactions, 0);
  ASSERT_EQ(cache.tokens(s).size(), size_t(n));
  ASSERT_TRUE(cache.compacted(s));
  std::vector<float> logits = r.logits;
  const int64_t V = model().config().vocab_size;
  for (int step = 0; step < 6; ++step) {
    ASSERT_EQ(int64_t(logits.size()), V);
    for (float x : logits) ASSERT_TRUE(std::isfinite(x));
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    const int64_t len0 = cache.length(s, 0);
    ASSERT_TRUE(cache.append(s, std::span(&next, 1)));
    engine::Model::BatchItem item;
    item.tokens = std::span(&next, 1);
    item.paged = &cache;
    item.seq = s;
    logits = model().forward_batch(std::span(&item, 1));
    cache.commit(s);
    EXPECT_EQ(cache.length(s, 0), len0 + 1);
    for (int64_t l = 0; l < 2; ++l)
      for (int64_t h = 0; h < 2; ++h) EXPECT_EQ(cache.positions(s, l, h).back(), n + step) << "layer " << l;
  }
  EXPECT_EQ(cache.tokens(s).size(), size_t(n + 6));
}

INSTANTIATE_TEST_SUITE_P(Policies, ContinuesAfterCompaction,
                         ::testing::Values("streaming", "snapkv", "h2o", "keydiff", "patched"));

TEST(CompressBlockPrefill, ContinuesASequenceThatAlreadyHoldsTokens) {
  auto cache = make_cache(model(), 32);
  const SeqId s = cache.create();
  auto policy = make_policy("streaming", options_for_tests());
  BlockPrefillOptions bo;
  bo.block_tokens = 16;
  bo.layer_budget = {32, 32};
  const auto h = history(240);
  block_prefill(model(), cache, s, std::span(h).first(100), *policy, bo);
  block_prefill(model(), cache, s, std::span(h).subspan(100), *policy, bo);
  EXPECT_EQ(cache.tokens(s).size(), 240u);
  const auto pos = cache.positions(s, 1, 1);
  ASSERT_EQ(pos.size(), 32u);
  EXPECT_EQ(pos[0], 0);
  EXPECT_EQ(pos[4], 240 - 28);
  EXPECT_EQ(pos.back(), 239);
}

TEST(CompressBlockPrefill, RejectsBadOptionsAndReportsAFullPool) {
  auto cache = make_cache(model(), 4);
  const SeqId s = cache.create();
  auto policy = make_policy("keydiff");
  BlockPrefillOptions bo;
  bo.block_tokens = 16;
  bo.head_wise = false;
  const auto h = history(200);
  EXPECT_THROW(block_prefill(model(), cache, s, h, *policy, bo), std::invalid_argument);  // no budgets
  bo.layer_budget = {16, 16, 16};
  EXPECT_THROW(block_prefill(model(), cache, s, h, *policy, bo), std::invalid_argument);
  bo.layer_budget = {16, 0};
  EXPECT_THROW(block_prefill(model(), cache, s, h, *policy, bo), std::invalid_argument);
  bo.layer_budget = {16, 16};
  bo.block_tokens = 0;
  EXPECT_THROW(block_prefill(model(), cache, s, h, *policy, bo), std::invalid_argument);
  bo.block_tokens = 16;
  EXPECT_THROW(block_prefill(model(), cache, s, {}, *policy, bo), std::invalid_argument);
  // Four blocks per layer hold the budget (one block) plus one block, but not
  // the full history: full runs out of room, keydiff does not.
  auto full = make_policy("full");
  EXPECT_THROW(block_prefill(model(), cache, s, h, *full, bo), std::runtime_error);
  cache.free(s);
  const SeqId t = cache.create();
  const auto r = block_prefill(model(), cache, t, h, *policy, bo);
  EXPECT_EQ(r.kept, (std::vector<std::vector<int64_t>>{{16, 16}, {16, 16}}));
}

TEST(CompressBlockPrefill, LogsWhatEachCompactionKeptAndDropped) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto log = logger();
  log->sinks().push_back(sink);
  const auto level = log->level();
  log->set_level(spdlog::level::debug);
  auto cache = make_cache(model(), 32);
  const SeqId s = cache.create();
  auto policy = make_policy("streaming", options_for_tests());
  BlockPrefillOptions bo;
  bo.block_tokens = 16;
  bo.layer_budget = {32, 24};
  bo.head_wise = false;
  block_prefill(model(), cache, s, history(64), *policy, bo);
  log->sinks().pop_back();
  log->set_level(level);
  const std::string text = out.str();
  // After the last block layer 1 held sinks 0..3, 28..47 and the block 48..63
  // per head; it keeps the sinks and 44..63, dropping 28..43.
  EXPECT_NE(text.find("compact layer 1 with streaming (uniform): budget 24 x 2 heads, kept 48 of 80 slots "
                      "(per head 24..24), dropped 32 from positions 28..43, 8 protected"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("block prefill with streaming: 64 tokens in blocks of 16, 3 compactions"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace mnemo::memory::compress
