// Decode and prefill over compacted, per-head-uneven layers are exact against
// a reference that masks the evicted positions (tests/golden/compact/, made
// by tests/reference/masked_reference.py). The engine runs as serving does:
// append to the paged cache, forward_batch, commit; at each `compact` of the
// golden's schedule every layer with an eviction is compacted with keep
// lists derived from the golden's kept positions, so heads keep different
// counts and get holes that both attention paths must skip (a 40-token
// chunk goes through the gathered GEMM path, decode steps through the
// per-token paged path).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/kv/kv_cache_manager.h"
#include "engine/model/model.h"
#include "kernels/cpu/matmul.h"
#include "tests/engine/golden_model.h"

namespace mnemo::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The slots of one head holding `positions` (each must be held).
std::vector<int32_t> slots_of(const kv::KvCacheManager& cache, kv::SeqId s, int64_t layer, int64_t head,
                              const std::vector<int32_t>& positions) {
  std::span<const int32_t> held = cache.positions(s, layer, head);
  std::vector<int32_t> iota;
  if (held.empty()) {  // never compacted: slot i holds token i
    iota.resize(size_t(cache.length(s, layer)));
    for (size_t i = 0; i < iota.size(); ++i) iota[i] = int32_t(i);
    held = iota;
  }
  std::vector<int32_t> slots;
  for (int32_t p : positions) {
    const auto it = std::find(held.begin(), held.end(), p);
    EXPECT_NE(it, held.end()) << "layer " << layer << " head " << head << " no longer holds position " << p;
    if (it != held.end()) slots.push_back(int32_t(it - held.begin()));
  }
  return slots;
}

struct Outcome {
  double worst = 0;
  int64_t rows = 0;
  int64_t heads_with_holes = 0;
};

// Walks the golden's schedule; with via_snapshot, every compacted sequence
// is exported, freed and imported again before it continues.
Outcome run_schedule(const Model& model, const json& g, bool via_snapshot, kv::KvDType dtype = kv::KvDType::F32) {
  const ModelConfig& c = model.config();
  kv::KvConfig kc;
  kc.dtype = dtype;
  kc.layers = c.num_layers;
  kc.kv_heads = c.num_kv_heads;
  kc.head_dim = c.head_dim;
  kc.block_size = 16;
  kc.bytes_budget = 24 * kc.layers * kc.bytes_per_block();
  kv::KvCacheManager cache(kc);
  kv::SeqId s = cache.create();

  const std::vector<int32_t> tokens = g["tokens"].get<std::vector<int32_t>>();
  const std::vector<int64_t> rows = g["logits_positions"].get<std::vector<int64_t>>();
  const json& want = g["logits"];
  const int64_t V = c.vocab_size;
  Outcome out;
  for (const json& op : g["schedule"]) {
    if (op["op"] == "forward") {
      const int64_t begin = op["begin"].get<int64_t>(), end = op["end"].get<int64_t>();
      const std::span<const int32_t> chunk = std::span(tokens).subspan(size_t(begin), size_t(end - begin));
      EXPECT_TRUE(cache.append(s, chunk));
      Model::BatchItem item;
      item.tokens = chunk;
      item.all_logits = true;
      item.paged = &cache;
      item.seq = s;
      const std::vector<float> logits = model.forward_batch(std::span(&item, 1));
      cache.commit(s);
      for (size_t r = 0; r < rows.size(); ++r)
        if (rows[r] >= begin && rows[r] < end) {
          out.worst = std::max(out.worst, testing::row_rel_err(&logits[size_t((rows[r] - begin) * V)], want[r]));
          ++out.rows;
        }
      continue;
    }
    EXPECT_EQ(op["op"], "compact");
    for (int64_t l = 0; l < c.num_layers; ++l) {
      bool evicts = false;
      for (const json& e : op["evict"][size_t(l)]) evicts = evicts || !e.empty();
      if (!evicts) continue;  // a layer without eviction keeps its (shared) table
      std::vector<std::vector<int32_t>> keep;
      size_t longest = 0;
      for (int64_t h = 0; h < c.num_kv_heads; ++h) {
        const auto kept = op["keep"][size_t(l)][size_t(h)].get<std::vector<int32_t>>();
        keep.push_back(slots_of(cache, s, l, h, kept));
        longest = std::max(longest, kept.size());
      }
      EXPECT_TRUE(cache.compact(s, l, keep)) << "layer " << l;
      for (int64_t h = 0; h < c.num_kv_heads; ++h) {
        const kv::Hole hole = cache.hole(s, l, h);
        EXPECT_EQ(hole.end - hole.begin, int64_t(longest - keep[size_t(h)].size())) << "layer " << l << " head " << h;
        out.heads_with_holes += !hole.empty();
      }
    }
    cache.check_invariants();
    if (via_snapshot) {
      const std::vector<uint8_t> bytes = cache.export_sequence(s);
      cache.free(s);
      const std::optional<kv::SeqId> copy = cache.import_sequence(bytes);
      EXPECT_TRUE(copy.has_value());
      if (!copy) return out;
      s = *copy;
    }
  }
  EXPECT_EQ(out.rows, int64_t(rows.size())) << "every stored row was compared";
  cache.free(s);
  cache.check_invariants();
  return out;
}

class CompactedForward : public ::testing::TestWithParam<fs::path> {};

TEST_P(CompactedForward, LogitsMatchTheMaskedReference) {
  const json g = testing::read_golden(GetParam());
  ASSERT_EQ(g["mode"], "compacted");
  const double tol = g["tolerance"]["max_rel_err"].get<double>();
  // The golden itself shows that masking matters far beyond the tolerance.
  ASSERT_GT(g["checks"]["mask_effect_min_per_head"].get<double>(), 100 * tol);

  const auto model = testing::load_golden_model(g, "compact_" + GetParam().stem().string(),
                                                "regenerate with tests/reference/masked_reference.py");
  ASSERT_TRUE(model);
  kernels::cpu::set_matmul_precision(kernels::cpu::MatmulPrecision::Exact);
  for (bool via_snapshot : {false, true}) {
    const Outcome o = run_schedule(*model, g, via_snapshot);
    std::printf("%s%s: max relative error %.3g over %lld rows (bound %.3g), %lld heads with a hole\n",
                g["case"].get<std::string>().c_str(), via_snapshot ? " (via snapshots)" : "", o.worst,
                (long long)o.rows, tol, (long long)o.heads_with_holes);
    EXPECT_LE(o.worst, tol) << (via_snapshot ? "via snapshots" : "in place");
    EXPECT_GT(o.heads_with_holes, 0) << "the golden must make heads keep different counts";
  }
  // The serving default: bf16 blocks (holes, compaction moves and snapshots
  // of 2-byte elements) within the bf16 KV bound of tests/engine/kv_dtype_test.cc,
  // layers * 4 * 2^-9 of the largest logit.
  const double bf16_tol = double(model->config().num_layers) * 4.0 / 512.0;
  for (bool via_snapshot : {false, true}) {
    const Outcome o = run_schedule(*model, g, via_snapshot, kv::KvDType::BF16);
    std::printf("%s%s, bf16 KV: max relative error %.3g (bound %.3g)\n", g["case"].get<std::string>().c_str(),
                via_snapshot ? " (via snapshots)" : "", o.worst, bf16_tol);
    EXPECT_LE(o.worst, bf16_tol) << "bf16 " << (via_snapshot ? "via snapshots" : "in place");
  }
  kernels::cpu::set_matmul_precision(kernels::cpu::MatmulPrecision::Fast);
}

INSTANTIATE_TEST_SUITE_P(Goldens, CompactedForward, ::testing::ValuesIn(testing::goldens_in("compact")),
                         [](const auto& info) { return info.param.stem().string(); });

TEST(CompactedForwardSet, HasBothCases) {
  std::vector<std::string> names;
  for (const fs::path& f : testing::goldens_in("compact")) names.push_back(f.stem().string());
  EXPECT_EQ(names, (std::vector<std::string>{"compact_once", "compact_twice"}));
}

}  // namespace
}  // namespace mnemo::engine
