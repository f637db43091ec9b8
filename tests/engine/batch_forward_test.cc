// A step over several sequences gives each the logits it would get alone.
#include <gtest/gtest.h>

#include "engine/model/model.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::engine {
namespace {

TEST(BatchForward, MixedPrefillAndDecodeMatchSingleSequences) {
  const auto dir = testing::fresh_dir("batch");
  testing::TinyModel().write(dir);
  const auto m = Model::load(dir);
  const std::vector<std::vector<int32_t>> prompts{{1, 2, 3, 4, 5, 6, 7}, {9}, {30, 31, 32}, {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5}};

  // Alone: each prompt, then one decode token.
  std::vector<std::vector<float>> alone_prefill, alone_decode;
  for (const auto& p : prompts) {
    KvCache c = m->new_cache();
    alone_prefill.push_back(m->forward(p, c, true));
    const int32_t next = 17;
    alone_decode.push_back(m->forward(std::span(&next, 1), c));
  }
  // Together: one batched prefill step (all rows), then one batched decode step.
  std::vector<KvCache> caches;
  for (size_t i = 0; i < prompts.size(); ++i) caches.push_back(m->new_cache(2));
  std::vector<Model::BatchItem> items;
  for (size_t i = 0; i < prompts.size(); ++i) items.push_back({prompts[i], &caches[i], true});
  const auto pre = m->forward_batch(items);
  size_t base = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (size_t j = 0; j < alone_prefill[i].size(); ++j)
      ASSERT_NEAR(pre[base + j], alone_prefill[i][j], 1e-5f) << "seq " << i << " value " << j;
    base += alone_prefill[i].size();
  }
  ASSERT_EQ(base, pre.size());
  const int32_t next = 17;
  items.clear();
  for (size_t i = 0; i < prompts.size(); ++i) items.push_back({std::span(&next, 1), &caches[i], false});
  const auto dec = m->forward_batch(items);
  ASSERT_EQ(dec.size(), prompts.size() * 40);
  for (size_t i = 0; i < prompts.size(); ++i)
    for (size_t j = 0; j < 40; ++j) ASSERT_NEAR(dec[i * 40 + j], alone_decode[i][j], 1e-5f) << "seq " << i;
}

}  // namespace
}  // namespace mnemo::engine
