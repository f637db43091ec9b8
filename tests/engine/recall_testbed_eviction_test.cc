// Where the recall testbed keeps a fact, seen through the engine's own
// compaction: evicting the slot of a fact's VALUE from layer 1 (every KV head)
// loses exactly that fact, evicting its KEY's slot loses nothing, and layer
// 0's old slots are not needed at all (recall-model.md, "Eviction
// sensitivity"; tests/reference/recall_testbed_reference.py measures the same
// on the PyTorch reference).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include "kernels/cpu/parallel.h"
#include <random>

#include "engine/kv/kv_cache_manager.h"
#include "engine/model/model.h"
#include "engine/model/recall_testbed.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::engine {
namespace {

namespace fs = std::filesystem;

struct Fact {
  int32_t key, value;
  int32_t key_pos;
};

class RecallEviction : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    kernels::cpu::set_num_threads(1);  // a tiny model: parallel regions are barrier waits on a loaded machine
    dir_ = new fs::path(testing::fresh_dir("recall_eviction"));
    generate_recall_testbed(RecallTestbedOptions{}, *dir_);
    model_ = Model::load(*dir_).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    fs::remove_all(*dir_);
    delete dir_;
  }

  void SetUp() override {
    const ModelConfig& c = model_->config();
    kv::KvConfig k;
    k.layers = c.num_layers, k.kv_heads = c.num_kv_heads, k.head_dim = c.head_dim, k.block_size = 16;
    k.bytes_budget = k.layers * k.bytes_per_block() * 512;
    kv_ = std::make_unique<kv::KvCacheManager>(k);
    // 768 tokens of topic words with 24 facts at even spacing; keys and
    // values drawn once, filler from other indices of the same topics.
    std::mt19937 rng(5);
    const int64_t topics = 8;
    for (int64_t i = 0; i < 768; ++i)
      tokens_.push_back(recall_topic_token(i % topics, 1000 + int64_t(rng() % 2000), topics));
    for (int32_t f = 0; f < 24; ++f) {
      const int32_t pos = 20 + f * 30;
      const Fact fact{recall_topic_token(f % topics, 2 * f, topics), recall_topic_token(f % topics, 2 * f + 1, topics),
                      pos};
      tokens_[size_t(pos)] = fact.key;
      tokens_[size_t(pos + 1)] = fact.value;
      facts_.push_back(fact);
    }
    history_ = kv_->create();
    ASSERT_TRUE(kv_->append(history_, tokens_));
    Model::BatchItem item{.tokens = tokens_, .paged = kv_.get(), .seq = history_};
    (void)model_->forward_batch(std::span(&item, 1));
    kv_->commit(history_);
  }
  void TearDown() override { kv_->check_invariants(); }

  // A fork of the history with `evicted` slots removed from `layer` in every KV head.
  kv::SeqId fork_without(int64_t layer, std::vector<int32_t> evicted) {
    const kv::SeqId f = kv_->fork(history_);
    std::vector<int32_t> keep;
    for (int32_t i = 0; i < int32_t(tokens_.size()); ++i)
      if (std::find(evicted.begin(), evicted.end(), i) == evicted.end()) keep.push_back(i);
    const std::vector<std::vector<int32_t>> per_head(size_t(model_->config().num_kv_heads), keep);
    EXPECT_TRUE(kv_->compact(f, layer, per_head));
    return f;
  }

  bool recalls(kv::SeqId seq, const Fact& fact) {
    const kv::SeqId q = kv_->fork(seq);
    const std::vector<int32_t> question = recall_question(fact.key);
    EXPECT_TRUE(kv_->append(q, question));
    Model::BatchItem item{.tokens = question, .paged = kv_.get(), .seq = q};
    const std::vector<float> logits = model_->forward_batch(std::span(&item, 1));
    kv_->free(q);
    return std::max_element(logits.begin(), logits.end()) - logits.begin() == fact.value;
  }

  static fs::path* dir_;
  static Model* model_;
  std::unique_ptr<kv::KvCacheManager> kv_;
  std::vector<int32_t> tokens_;
  std::vector<Fact> facts_;
  kv::SeqId history_;
};

fs::path* RecallEviction::dir_ = nullptr;
Model* RecallEviction::model_ = nullptr;

TEST_F(RecallEviction, EveryFactWithTheWholeCache) {
  for (const Fact& f : facts_) EXPECT_TRUE(recalls(history_, f)) << "key " << f.key;
}

TEST_F(RecallEviction, LosingAValueSlotLosesExactlyThatFact) {
  for (size_t i : {size_t(0), size_t(7), size_t(23)}) {
    const kv::SeqId f = fork_without(1, {facts_[i].key_pos + 1});
    for (size_t j = 0; j < facts_.size(); ++j)
      EXPECT_EQ(recalls(f, facts_[j]), i != j) << "value of fact " << i << " evicted, asking fact " << j;
    kv_->free(f);
  }
}

TEST_F(RecallEviction, LosingAKeySlotLosesNothing) {
  std::vector<int32_t> keys;
  for (const Fact& f : facts_) keys.push_back(f.key_pos);
  const kv::SeqId f = fork_without(1, keys);
  for (const Fact& fact : facts_) EXPECT_TRUE(recalls(f, fact)) << "key " << fact.key;
  kv_->free(f);
}

TEST_F(RecallEviction, LayerZerosOldSlotsAreNotNeeded) {
  // Layer 0 keeps only its first 16 and last 16 slots: layer 1's keys already hold each slot's predecessor.
  std::vector<int32_t> evicted(tokens_.size() - 32);
  std::iota(evicted.begin(), evicted.end(), 16);
  const kv::SeqId f = fork_without(0, evicted);
  for (const Fact& fact : facts_) EXPECT_TRUE(recalls(f, fact)) << "key " << fact.key;
  kv_->free(f);
}

}  // namespace
}  // namespace mnemo::engine
