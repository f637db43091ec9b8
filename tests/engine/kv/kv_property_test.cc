// Thousands of random operations against a shadow model kept in plain
// vectors; every invariant is checked after every step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>

#include "engine/kv/kv_cache_manager.h"
#include "kv_test_util.h"

namespace mnemo::engine::kv {
namespace {

using testing::append_and_write;
using testing::kv_value;
using testing::stored;

// What a sequence must read back: its tokens, and per layer and head the
// original positions it keeps (K/V follow from kv_value).
struct Shadow {
  uint64_t salt = 0;
  std::vector<int32_t> tokens;
  std::vector<std::vector<std::vector<int32_t>>> kept;  // [layer][head]
};

struct PinnedBlock {
  int64_t layer;
  int32_t block;
  std::vector<uint8_t> k, v;  // the block's bytes
};

class PropertyRun {
 public:
  PropertyRun(uint32_t seed, KvConfig cfg) : rng_(seed), kv_(cfg), cfg_(kv_.config()) {
    for (int p = 0; p < 3; ++p) prefixes_.push_back(random_tokens(6 + 5 * p));
  }

  void run(int steps) {
    for (int step = 0; step < steps; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      one_op();
      check();
      if (::testing::Test::HasFatalFailure()) return;
    }
    for (auto& [owner, blocks] : pins_) kv_.unpin(owner);
    for (auto& [id, s] : seqs_) kv_.free(SeqId{id});
    kv_.check_invariants();
    for (int64_t l = 0; l < cfg_.layers; ++l) EXPECT_EQ(kv_.stats(l).used, 0) << "leaked blocks";
    EXPECT_EQ(kv_.num_free_blocks(), kv_.allocator().num_blocks());
    EXPECT_GT(counts_["evicting alloc"] + counts_["hit"], 0);
  }

  std::map<std::string, int> counts_;

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::vector<int32_t> random_tokens(int n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = pick(50);
    return t;
  }
  uint32_t random_seq() {
    auto it = seqs_.begin();
    std::advance(it, pick(int(seqs_.size())));
    return it->first;
  }
  Shadow fresh(uint64_t salt) {
    Shadow s;
    s.salt = salt;
    s.kept.assign(size_t(cfg_.layers), std::vector<std::vector<int32_t>>(size_t(cfg_.kv_heads)));
    return s;
  }
  static void extend(Shadow& s, int64_t first, int64_t n) {
    for (auto& layer : s.kept)
      for (auto& head : layer)
        for (int64_t i = 0; i < n; ++i) head.push_back(int32_t(first + i));
  }

  bool grow(uint32_t id, const std::vector<int32_t>& add) {
    Shadow& s = seqs_[id];
    AllocRequest req[] = {{SeqId{id}, int64_t(add.size())}};
    const bool predicted = kv_.can_allocate(req);
    const int64_t free_before = kv_.num_free_blocks(), cached_before = kv_.stats(0).cached;
    auto all = s.tokens;
    all.insert(all.end(), add.begin(), add.end());
    const bool ok = append_and_write(kv_, SeqId{id}, s.salt, all, int64_t(s.tokens.size()), int64_t(add.size()));
    EXPECT_EQ(predicted, ok) << "can_allocate disagrees with append";
    if (ok && kv_.stats(0).cached < cached_before && free_before > 0) ++counts_["evicting alloc"];
    if (!ok) return false;
    extend(s, int64_t(s.tokens.size()), int64_t(add.size()));
    s.tokens = all;
    return true;
  }

  void one_op() {
    const int r = pick(100);
    // Pins can hold the whole pool; without unpins no new sequence would fit.
    if (seqs_.empty()) return !pins_.empty() && pick(2) ? op_unpin() : op_new();
    if (r < 15) return op_new();
    if (r < 45) return (void)grow(random_seq(), random_tokens(1 + pick(5)));
    if (r < 53) return op_fork();
    if (r < 65) return op_free();
    if (r < 71) return op_pin();
    if (r < 77) return op_unpin();
    if (r < 87) return op_compact();
    if (r < 95) return op_export_import();
    PrefixMatch m = kv_.match_prefix(prefixes_[size_t(pick(3))], uint64_t(pick(2)));
    kv_.release(std::move(m));
  }

  void op_new() {
    ++counts_["new"];
    const uint64_t salt = uint64_t(pick(2));
    auto prompt = prefixes_[size_t(pick(3))];
    auto suffix = random_tokens(pick(7));
    prompt.insert(prompt.end(), suffix.begin(), suffix.end());
    if (prompt.empty()) prompt.push_back(1);
    PrefixMatch m = kv_.match_prefix(prompt, salt);
    EXPECT_TRUE(std::equal(m.tokens.begin(), m.tokens.end(), prompt.begin()));
    EXPECT_LT(m.num_tokens, int64_t(prompt.size()));
    if (m.num_tokens > 0) ++counts_["hit"];
    Shadow s = fresh(salt);
    s.tokens.assign(prompt.begin(), prompt.begin() + m.num_tokens);
    extend(s, 0, m.num_tokens);
    const uint32_t id = kv_.create(std::move(m)).value;
    seqs_[id] = s;
    if (!grow(id, std::vector<int32_t>(prompt.begin() + int64_t(s.tokens.size()), prompt.end()))) {
      kv_.free(SeqId{id});
      seqs_.erase(id);
    }
  }

  void op_fork() {
    if (seqs_.size() > 12) return op_free();
    ++counts_["fork"];
    const uint32_t parent = random_seq();
    seqs_[kv_.fork(SeqId{parent}).value] = seqs_[parent];
  }

  void op_free() {
    ++counts_["free"];
    const uint32_t id = random_seq();
    kv_.free(SeqId{id});
    seqs_.erase(id);
  }

  void op_pin() {
    if (pins_.size() >= 4) return op_unpin();
    ++counts_["pin"];
    const uint32_t id = random_seq();
    const uint64_t owner = next_owner_++;
    kv_.pin(SeqId{id}, owner);
    auto& held = pins_[owner];
    for (int64_t l = 0; l < cfg_.layers; ++l)
      for (int32_t b : kv_.layer_blocks(SeqId{id}, l).blocks) {
        const int64_t n = cfg_.elems_per_half() * cfg_.elem_bytes();
        const auto* k = static_cast<const uint8_t*>(kv_.k_block(l, b));
        const auto* v = static_cast<const uint8_t*>(kv_.v_block(l, b));
        held.push_back({l, b, std::vector<uint8_t>(k, k + n), std::vector<uint8_t>(v, v + n)});
      }
  }

  void op_unpin() {
    if (pins_.empty()) return;
    ++counts_["unpin"];
    auto it = pins_.begin();
    std::advance(it, pick(int(pins_.size())));
    kv_.unpin(it->first);
    pins_.erase(it);
  }

  void op_compact() {
    const uint32_t id = random_seq();
    const int64_t layer = pick(int(cfg_.layers));
    const int64_t len = kv_.length(SeqId{id}, layer);
    if (len == 0) return;
    ++counts_["compact"];
    // Heads keep different counts most of the time (the shorter ones get a
    // hole), the same count sometimes. Keeping a prefix moves nothing, which
    // takes other paths (no copies, indexed blocks reopened by the next append).
    const bool even = pick(3) == 0, prefix = pick(4) == 0;
    std::vector<std::vector<int32_t>> valid(size_t(cfg_.kv_heads));  // slots outside each head's hole
    int64_t fewest = len;
    for (int64_t h = 0; h < cfg_.kv_heads; ++h) {
      const Hole gap = kv_.hole(SeqId{id}, layer, h);
      for (int32_t i = 0; i < len; ++i)
        if (!gap.contains(i)) valid[size_t(h)].push_back(i);
      fewest = std::min(fewest, int64_t(valid[size_t(h)].size()));
    }
    for (const auto& v : valid)
      if (int64_t(v.size()) < len) {
        ++counts_["compact of a layer with a hole"];
        break;
      }
    const int64_t even_count = pick(int(fewest) + 1);
    std::vector<std::vector<int32_t>> keep(size_t(cfg_.kv_heads));
    const auto& kept = seqs_[id].kept[size_t(layer)];
    auto next_kept = kept;
    for (int64_t h = 0; h < cfg_.kv_heads; ++h) {
      // kept[h][r] is the position held by the r-th valid slot.
      std::vector<int32_t> ranks(valid[size_t(h)].size());
      for (size_t r = 0; r < ranks.size(); ++r) ranks[r] = int32_t(r);
      if (!prefix) std::shuffle(ranks.begin(), ranks.end(), rng_);
      ranks.resize(size_t(even ? even_count : pick(int(ranks.size()) + 1)));
      std::sort(ranks.begin(), ranks.end());
      std::vector<int32_t> next;
      for (int32_t r : ranks) {
        next.push_back(kept[size_t(h)][size_t(r)]);
        keep[size_t(h)].push_back(valid[size_t(h)][size_t(r)]);
      }
      next_kept[size_t(h)] = next;
    }
    if (kv_.compact(SeqId{id}, layer, keep)) {
      seqs_[id].kept[size_t(layer)] = next_kept;
      for (int64_t h = 0; h < cfg_.kv_heads; ++h)
        if (!kv_.hole(SeqId{id}, layer, h).empty()) {
          ++counts_["uneven compact"];
          break;
        }
    } else {
      ++counts_["compact refused"];
    }
  }

  void op_export_import() {
    const uint32_t id = random_seq();
    std::vector<uint8_t> bytes = kv_.export_sequence(SeqId{id});
    std::optional<SeqId> copy = kv_.import_sequence(bytes);
    if (!copy) return;
    ++counts_["import"];
    seqs_[copy->value] = seqs_[id];
  }

  void check() {
    kv_.check_invariants();
    for (int64_t l = 0; l < cfg_.layers; ++l) {
      PoolStats st = kv_.stats(l);
      ASSERT_EQ(st.used + st.free, st.blocks);
      ASSERT_LE(st.cached + st.stranded, st.free);
      ASSERT_LE(st.pinned, st.used);
    }
    for (const auto& [id, s] : seqs_)
      for (int64_t l = 0; l < cfg_.layers; ++l)
        for (int64_t h = 0; h < cfg_.kv_heads; ++h) {
          HeadCopy g = kv_.gather(SeqId{id}, l, h);
          const auto& kept = s.kept[size_t(l)][size_t(h)];
          ASSERT_EQ(g.positions, kept) << "seq " << id << " layer " << l << " head " << h;
          const Hole gap = kv_.hole(SeqId{id}, l, h);
          ASSERT_EQ(kv_.length(SeqId{id}, l) - (gap.end - gap.begin), int64_t(kept.size()))
              << "every slot outside the hole holds a kept position";
          for (size_t i = 0; i < kept.size(); ++i)
            for (int64_t d = 0; d < cfg_.head_dim; ++d) {
              const int32_t p = kept[i];
              ASSERT_EQ(g.k[i * size_t(cfg_.head_dim) + size_t(d)],
                        stored(cfg_, kv_value(s.salt, s.tokens[size_t(p)], p, l, h, d, false)))
                  << "seq " << id << " layer " << l << " head " << h << " slot " << i;
              ASSERT_EQ(g.v[i * size_t(cfg_.head_dim) + size_t(d)],
                        stored(cfg_, kv_value(s.salt, s.tokens[size_t(p)], p, l, h, d, true)));
            }
        }
    for (const auto& [owner, held] : pins_)
      for (const PinnedBlock& pb : held) {
        ASSERT_EQ(0, std::memcmp(pb.k.data(), kv_.k_block(pb.layer, pb.block), pb.k.size()))
            << "pinned block " << pb.block << " of layer " << pb.layer << " changed";
        ASSERT_EQ(0, std::memcmp(pb.v.data(), kv_.v_block(pb.layer, pb.block), pb.v.size()));
      }
  }

  std::mt19937 rng_;
  KvCacheManager kv_;
  const KvConfig& cfg_;
  std::vector<std::vector<int32_t>> prefixes_;
  std::map<uint32_t, Shadow> seqs_;
  std::map<uint64_t, std::vector<PinnedBlock>> pins_;
  uint64_t next_owner_ = 1;
};

class KvProperty : public ::testing::TestWithParam<uint32_t> {};

TEST_P(KvProperty, RandomOperationsKeepEveryInvariant) {
  PropertyRun run(GetParam(), testing::small_config(/*blocks=*/28, /*layers=*/3));
  run.run(3000);
  std::string summary;
  for (const auto& [op, n] : run.counts_) summary += op + "=" + std::to_string(n) + " ";
  RecordProperty("operations", summary);
  std::printf("operations: %s\n", summary.c_str());
  for (const char* op : {"new", "fork", "free", "pin", "unpin", "compact", "uneven compact",
                         "compact of a layer with a hole", "import", "hit"})
    EXPECT_GT(run.counts_[op], 0) << op << " never exercised";
}

// The same operations over bf16 blocks: every byte move (copy-on-write,
// compaction, snapshots) must keep 2-byte elements intact, and reads give the
// written value rounded to nearest even.
TEST(KvPropertyBf16, RandomOperationsOverBf16Blocks) {
  PropertyRun run(7, testing::small_config(/*blocks=*/28, /*layers=*/3, 2, /*head_dim=*/20, 4, KvDType::BF16));
  run.run(2000);
  for (const char* op : {"fork", "pin", "compact", "uneven compact", "import", "hit"})
    EXPECT_GT(run.counts_[op], 0) << op << " never exercised";
}

TEST(KvPropertyCollisions, AllBlocksCollideAndNothingLeaks) {
  KvConfig c = testing::small_config(20, 2);
  c.hash = [](uint64_t parent, std::span<const int32_t> t, uint64_t) { return (parent + uint64_t(t[0])) % 5; };
  PropertyRun run(99, c);
  run.run(1500);
}

TEST(KvPropertyShapes, OddBlockSizesHeadCountsAndTinyPools) {
  // (blocks, layers, kv_heads, head_dim, block_size)
  const int64_t shapes[][5] = {{40, 1, 1, 2, 1}, {12, 4, 3, 2, 3}, {6, 2, 2, 4, 5}, {64, 2, 1, 8, 16}};
  uint32_t seed = 10;
  for (const auto& sh : shapes) {
    SCOPED_TRACE("shape " + std::to_string(sh[0]) + "/" + std::to_string(sh[1]) + "/" + std::to_string(sh[2]) + "/" +
                 std::to_string(sh[3]) + "/" + std::to_string(sh[4]));
    PropertyRun run(seed++, testing::small_config(sh[0], sh[1], sh[2], sh[3], sh[4]));
    run.run(1000);
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, KvProperty, ::testing::Values(1u, 2u, 3u));

}  // namespace
}  // namespace mnemo::engine::kv
