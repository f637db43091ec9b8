// Each eviction policy's ranking: by name, streaming's sinks + recent,
// KeyDiff's outlier, H2O's mass accumulated by position across compactions,
// SnapKV's window and patched queries through the driver.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>

#include "engine/model/attention_scores.h"
#include "memory/compress/block_prefill.h"
#include "memory/compress/policies.h"
#include "memory/compress/selection.h"
#include "tests/memory/compress_test_model.h"

namespace mnemo::memory::compress {
namespace {

using engine::kv::KvCacheManager;
using engine::kv::SeqId;
using testing::history;
using testing::make_cache;
using testing::model;

std::vector<int32_t> head_positions(const KvCacheManager& c, SeqId s, int64_t l, int64_t h) {
  std::vector<int32_t> p = slot_positions(c, s, l, h);
  std::erase(p, -1);  // the hole
  return p;
}

TEST(CompressPolicies, MadeByNameAndUnknownNamesListTheKnownOnes) {
  for (std::string_view n : policy_names()) {
    PolicyOptions o;
    o.text = {5, 6};
    EXPECT_EQ(make_policy(n, o)->name(), n);
  }
  EXPECT_FALSE(make_policy("full")->evicts());
  try {
    make_policy("lru");
    FAIL() << "no throw";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'lru'"), std::string::npos) << m;
    for (std::string_view n : policy_names()) EXPECT_NE(m.find(n), std::string::npos) << m;
  }
}

class StreamingKeeps : public ::testing::TestWithParam<bool> {};

TEST_P(StreamingKeeps, ExactlyTheSinksAndTheMostRecentTokensByPosition) {
  auto cache = make_cache(model(), 32);
  const SeqId s = cache.create();
  PolicyOptions o;
  o.sinks = 4;
  auto p = make_policy("streaming", o);
  BlockPrefillOptions bo;
  bo.block_tokens = 16;
  bo.layer_budget = {32, 32};
  bo.head_wise = GetParam();
  const auto h = history(200);
  const auto r = block_prefill(model(), cache, s, h, *p, bo);
  std::vector<int32_t> want{0, 1, 2, 3};
  for (int32_t i = 200 - 28; i < 200; ++i) want.push_back(i);
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t kh = 0; kh < 2; ++kh) EXPECT_EQ(head_positions(cache, s, l, kh), want) << "layer " << l << " head " << kh;
  EXPECT_EQ(cache.tokens(s).size(), 200u);
  EXPECT_EQ(r.compactions, 11);  // after every block past the first two (32 slots fit)
}

INSTANTIATE_TEST_SUITE_P(Modes, StreamingKeeps, ::testing::Values(true, false));

TEST(CompressPolicies, StreamingCapsSinksAtHalfTheBudget) {
  auto cache = make_cache(model(), 32);
  const SeqId s = cache.create();
  auto p = make_policy("streaming");  // 128 sinks, budget 16: 8 sinks and 8 recent
  BlockPrefillOptions bo;
  bo.block_tokens = 16;
  bo.layer_budget = {16, 16};
  block_prefill(model(), cache, s, history(100), *p, bo);
  const std::vector<int32_t> want{0, 1, 2, 3, 4, 5, 6, 7, 92, 93, 94, 95, 96, 97, 98, 99};
  EXPECT_EQ(head_positions(cache, s, 1, 0), want);
}

// Writes hand-made keys (values zero) for n tokens into every layer.
void write_keys(KvCacheManager& cache, SeqId s, const std::vector<std::vector<float>>& keys_per_slot, int64_t heads,
                int64_t hd) {
  const int64_t n = int64_t(keys_per_slot.size());
  std::vector<int32_t> toks(size_t(n), 1);
  ASSERT_TRUE(cache.append(s, toks));
  std::vector<float> k(size_t(n * heads * hd)), v(k.size(), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t d = 0; d < hd; ++d) k[size_t((i * heads + h) * hd + d)] = keys_per_slot[size_t(i)][size_t(d)] * float(h + 1);
  for (int64_t l = 0; l < cache.config().layers; ++l) cache.write(s, l, n, k.data(), v.data());
  cache.commit(s);
}

TEST(CompressPolicies, KeyDiffRanksAnOutlierKeyHighest) {
  auto cache = make_cache(model(), 8);
  const SeqId s = cache.create();
  const int64_t hd = cache.config().head_dim, heads = cache.config().kv_heads;
  std::vector<std::vector<float>> keys(40, std::vector<float>(size_t(hd), 0.0f));
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i][0] = 1.0f + 0.5f * float(i % 3);  // the same direction, different lengths
    keys[i][1] = 0.05f * float(i % 5);        // a little spread
  }
  keys[23].assign(size_t(hd), 0.0f);
  keys[23][2] = -3.0f;  // orthogonal to everything else
  write_keys(cache, s, keys, heads, hd);

  KeyDiffPolicy p;
  const std::vector<int64_t> budgets{8, 8};
  const auto scores = p.score({model(), cache, s, budgets});
  // Reference: -cos(key, mean of the unit keys), the outlier included in the mean.
  std::vector<double> mean(size_t(hd), 0.0);
  for (const auto& k : keys) {
    double n = 0;
    for (float x : k) n += double(x) * x;
    for (size_t d = 0; d < k.size(); ++d) mean[d] += k[d] / std::sqrt(n);
  }
  ASSERT_EQ(scores.size(), 2u);
  for (const auto& layer : scores)
    for (const auto& head : layer.scores) {
      ASSERT_EQ(head.size(), 40u);
      EXPECT_EQ(std::max_element(head.begin(), head.end()) - head.begin(), 23);
      for (size_t i = 0; i < head.size(); ++i) {
        double dot = 0, nk = 0, nm = 0;
        for (size_t d = 0; d < size_t(hd); ++d) {
          dot += keys[i][d] * mean[d];
          nk += double(keys[i][d]) * keys[i][d];
          nm += mean[d] * mean[d];
        }
        EXPECT_NEAR(head[i], -dot / std::sqrt(nk * nm), 1e-5) << i;
      }
      // The outlier sits near orthogonal to the mean; every other key leans on it.
      EXPECT_GT(head[23], -0.1f);
      for (size_t i = 0; i < head.size(); ++i)
        if (i != 23) {
          EXPECT_LT(head[i], -0.9f) << i;
        }
    }
  // Through selection, a budget of one keeps just the outlier.
  EXPECT_EQ(select_uniform(scores[0].scores, 1), (KeepLists{{23}, {23}}));
}

// Records, independently of H2oPolicy, the Sum attention each observation
// gives every cached position, and which slot the position was in.
class RecordingH2o final : public Policy {
 public:
  explicit RecordingH2o(int64_t recent) : inner(recent) {}
  std::string_view name() const override { return "h2o"; }
  int64_t block_queries(int64_t n) const override { return inner.block_queries(n); }
  bool observes_every_block() const override { return true; }
  void observe(const CacheView& v, std::span<const int32_t> q) override {
    const auto s = engine::score_slots(v.model, v.cache, v.seq, q, engine::ScoreReduce::Sum);
    for (int64_t l = 0; l < 2; ++l)
      for (int64_t h = 0; h < 2; ++h) {
        const auto pos = slot_positions(v.cache, v.seq, l, h);
        for (size_t i = 0; i < pos.size(); ++i) {
          if (pos[i] < 0) continue;
          total[{l, h, pos[i]}] += double(s[size_t(l)][size_t(h)][i]);
          slots[{l, h, pos[i]}].insert(int32_t(i));
        }
      }
    ++observations;
    inner.observe(v, q);
  }
  std::vector<LayerScores> score(const CacheView& v) override { return inner.score(v); }

  H2oPolicy inner;
  std::map<std::tuple<int64_t, int64_t, int32_t>, double> total;
  std::map<std::tuple<int64_t, int64_t, int32_t>, std::set<int32_t>> slots;
  int observations = 0;
};

TEST(CompressPolicies, H2oAccumulatesMassByOriginalPositionAcrossCompactions) {
  auto cache = make_cache(model(), 32);
  const SeqId s = cache.create();
  RecordingH2o p(8);
  BlockPrefillOptions bo;
  bo.block_tokens = 16;
  bo.layer_budget = {24, 24};
  bo.head_wise = false;
  const auto r = block_prefill(model(), cache, s, history(160), p, bo);
  EXPECT_EQ(p.observations, 9);  // every block after the first
  EXPECT_GE(r.compactions, 8);
  int moved = 0;
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t h = 0; h < 2; ++h) {
      const auto pos = head_positions(cache, s, l, h);
      ASSERT_EQ(pos.size(), 24u);
      for (int32_t q : pos) {
        const auto key = std::make_tuple(l, h, q);
        if (q >= 160 - 16) {
          EXPECT_EQ(p.inner.mass(l, h, q), 0.0) << "the last block was never a key of an observation";
          continue;
        }
        EXPECT_NEAR(p.inner.mass(l, h, q), p.total[key], 1e-9) << "layer " << l << " head " << h << " pos " << q;
        EXPECT_GT(p.inner.mass(l, h, q), 0.0);
        if (p.slots[key].size() > 1) ++moved;
      }
      // The recent window is kept.
      for (int32_t q = 152; q < 160; ++q) EXPECT_TRUE(std::count(pos.begin(), pos.end(), q)) << q;
    }
  EXPECT_GT(moved, 0) << "no kept token changed slot between observations: the test did not exercise compaction";
}

// Captures the scores a wrapped policy hands the driver, with the positions
// each slot held then, to check what the driver kept against them.
class Capturing final : public Policy {
 public:
  explicit Capturing(Policy& p) : inner(p) {}
  std::string_view name() const override { return inner.name(); }
  int64_t block_queries(int64_t n) const override { return inner.block_queries(n); }
  bool observes_every_block() const override { return inner.observes_every_block(); }
  void observe(const CacheView& v, std::span<const int32_t> q) override { inner.observe(v, q); }
  std::vector<LayerScores> score(const CacheView& v) override {
    last = inner.score(v);
    positions.assign(2, std::vector<std::vector<int32_t>>(2));
    for (int64_t l = 0; l < 2; ++l)
      for (int64_t h = 0; h < 2; ++h) positions[size_t(l)][size_t(h)] = slot_positions(v.cache, v.seq, l, h);
    ntokens = int64_t(v.cache.tokens(v.seq).size());
    return last;
  }
  Policy& inner;
  std::vector<LayerScores> last;
  std::vector<std::vector<std::vector<int32_t>>> positions;
  int64_t ntokens = 0;
};

// The positions of the top `k` slots of a head by the captured scores.
std::vector<int32_t> top_positions(const std::vector<float>& s, const std::vector<int32_t>& pos, size_t k,
                                   const std::vector<int32_t>& protect) {
  std::vector<size_t> order(s.size());
  std::iota(order.begin(), order.end(), 0);
  std::set<int32_t> prot(protect.begin(), protect.end());
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const bool pa = prot.count(int32_t(a)), pb = prot.count(int32_t(b));
    if (pa != pb) return pa;
    return s[a] != s[b] ? s[a] > s[b] : a > b;
  });
  std::vector<int32_t> out;
  for (size_t i = 0; i < k && i < order.size(); ++i) out.push_back(pos[order[i]]);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(CompressPolicies, SnapKvKeepsItsWindowAndWhatTheWindowAttendedTo) {
  auto cache = make_cache(model(), 32);
  const SeqId s = cache.create();
  PolicyOptions o;
  o.window = 8;
  auto snap = make_policy("snapkv", o);
  Capturing p(*snap);
  BlockPrefillOptions bo;
  bo.block_tokens = 24;
  bo.layer_budget = {32, 40};
  bo.head_wise = false;
  block_prefill(model(), cache, s, history(150), p, bo);  // last block: 6 tokens
  ASSERT_FALSE(p.last.empty());
  int informative = 0;
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t h = 0; h < 2; ++h) {
      const auto& sc = p.last[size_t(l)].scores[size_t(h)];
      const auto& pos = p.positions[size_t(l)][size_t(h)];
      const auto kept = head_positions(cache, s, l, h);
      ASSERT_EQ(kept.size(), size_t(bo.layer_budget[size_t(l)]));
      // The window (the last block is shorter than it: all 6 tokens) is kept.
      for (int32_t q = 144; q < 150; ++q) EXPECT_TRUE(std::count(kept.begin(), kept.end(), q)) << q;
      EXPECT_EQ(kept, top_positions(sc, pos, kept.size(), p.last[size_t(l)].protect[size_t(h)]));
      // Slots the window saw carry its attention (each a weight in [0, 1]).
      for (size_t i = 0; i + 6 < sc.size(); ++i) {
        EXPECT_GE(sc[i], 0.0f);
        EXPECT_LE(sc[i], 1.0f);
        informative += sc[i] > 0;
      }
    }
  EXPECT_GT(informative, 0);
}

TEST(CompressPolicies, PatchedKeepsWhatItsQueriesAttendTo) {
  auto cache = make_cache(model(), 32);
  const SeqId s = cache.create();
  PatchedPolicy patched({7, 8, 9}, {});
  EXPECT_THROW(PatchedPolicy({}, {}).score({model(), cache, s, {}}), std::logic_error);
  patched.set_queries({11, 12}, {300, 301, 302, 303});
  EXPECT_EQ(std::vector<int32_t>(patched.queries().begin(), patched.queries().end()),
            (std::vector<int32_t>{11, 12, 300, 301, 302, 303}));
  Capturing p(patched);
  BlockPrefillOptions bo;
  bo.block_tokens = 32;
  bo.layer_budget = {20, 20};
  bo.head_wise = true;
  const auto h = history(128);
  block_prefill(model(), cache, s, h, p, bo);
  for (int64_t l = 0; l < 2; ++l) {
    // The layer's top 40 over both heads by the scores the policy gave (head-wise).
    std::vector<std::pair<float, std::pair<int32_t, int64_t>>> all;
    for (int64_t kh = 0; kh < 2; ++kh) {
      const auto& sc = p.last[size_t(l)].scores[size_t(kh)];
      for (size_t i = 0; i < sc.size(); ++i) all.push_back({sc[i], {p.positions[size_t(l)][size_t(kh)][i], kh}});
    }
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::set<std::pair<int32_t, int64_t>> want, got;
    for (size_t i = 0; i < 40; ++i) want.insert(all[i].second);
    for (int64_t kh = 0; kh < 2; ++kh)
      for (int32_t q : head_positions(cache, s, l, kh)) got.insert({q, kh});
    EXPECT_EQ(got, want) << "layer " << l;
  }
}

TEST(CompressPolicies, PatchedScoresAreTheQueriesAttention) {
  // Straight from the policy: the scores are score_slots of instruction + text.
  auto cache = make_cache(model(), 32);
  const SeqId s = cache.create();
  const auto h = history(70);
  ASSERT_TRUE(cache.append(s, h));
  engine::Model::BatchItem item;
  item.tokens = h;
  item.paged = &cache;
  item.seq = s;
  model().forward_batch(std::span(&item, 1));
  cache.commit(s);
  PatchedPolicy p({1, 2}, {40, 41, 42});
  const std::vector<int64_t> budgets{10, 10};
  const auto got = p.score({model(), cache, s, budgets});
  const std::vector<int32_t> q{1, 2, 40, 41, 42};
  const auto want = engine::score_slots(model(), cache, s, q, engine::ScoreReduce::Max);
  for (size_t l = 0; l < 2; ++l) EXPECT_EQ(got[l].scores, want[l]);
}

}  // namespace
}  // namespace mnemo::memory::compress
