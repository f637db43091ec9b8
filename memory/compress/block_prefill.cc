#include "memory/compress/block_prefill.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

#include "memory/compress/log.h"
#include "memory/compress/selection.h"

namespace mnemo::memory::compress {
namespace {

using Clock = std::chrono::steady_clock;
using engine::kv::KvCacheManager;
using engine::kv::SeqId;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Slots of one head holding a token: the layer's length less its hole.
int64_t held_slots(const KvCacheManager& cache, SeqId seq, int64_t layer, int64_t head) {
  const auto hole = cache.hole(seq, layer, head);
  return cache.length(seq, layer) - (hole.empty() ? 0 : hole.end - hole.begin);
}

class Run {
 public:
  Run(const engine::Model& model, KvCacheManager& cache, SeqId seq, Policy& policy, const BlockPrefillOptions& o)
      : model_(model), cache_(cache), seq_(seq), policy_(policy), o_(o),
        heads_(cache.config().kv_heads), layers_(cache.config().layers) {}

  BlockPrefillResult run(std::span<const int32_t> history) {
    for (size_t at = 0; at < history.size(); at += size_t(o_.block_tokens)) {
      const auto block = history.subspan(at, std::min(history.size() - at, size_t(o_.block_tokens)));
      const bool compacts = policy_.evicts() && over_budget_after(int64_t(block.size()));
      const int64_t w = (compacts || policy_.observes_every_block())
                            ? std::clamp<int64_t>(policy_.block_queries(int64_t(block.size())), 0, int64_t(block.size()))
                            : 0;
      const auto head = block.first(block.size() - size_t(w)), tail = block.last(size_t(w));
      if (!head.empty()) forward(head);
      if (!tail.empty()) {
        if (!cache_.tokens(seq_).empty()) {
          const auto t0 = Clock::now();
          policy_.observe(view(), tail);
          r_.scoring_seconds += since(t0);
        }
        forward(tail);
      }
      if (compacts && over_budget_after(0)) compact_all();
    }
    r_.final_kv_bytes = held_bytes(cache_, seq_);
    r_.kept.assign(size_t(layers_), std::vector<int64_t>(size_t(heads_)));
    for (int64_t l = 0; l < layers_; ++l)
      for (int64_t h = 0; h < heads_; ++h) r_.kept[size_t(l)][size_t(h)] = held_slots(cache_, seq_, l, h);
    logger()->info("block prefill with {}: {} tokens in blocks of {}, {} compactions, KV held {} bytes (peak {}), "
                   "prefill {:.3f} s, scoring {:.3f} s, compaction {:.3f} s",
                   policy_.name(), cache_.tokens(seq_).size(), o_.block_tokens, r_.compactions, r_.final_kv_bytes,
                   r_.peak_kv_bytes, r_.prefill_seconds, r_.scoring_seconds, r_.compaction_seconds);
    return std::move(r_);
  }

 private:
  CacheView view() const { return {model_, cache_, seq_, o_.layer_budget}; }

  void sample() { r_.peak_kv_bytes = std::max(r_.peak_kv_bytes, held_bytes(cache_, seq_)); }

  void forward(std::span<const int32_t> part) {
    if (!cache_.append(seq_, part))
      throw std::runtime_error("block prefill: no room in the KV cache for " + std::to_string(part.size()) +
                               " more tokens (" + std::to_string(cache_.num_free_blocks()) + " blocks free, sequence holds " +
                               std::to_string(held_bytes(cache_, seq_)) + " bytes)");
    sample();
    const auto t0 = Clock::now();
    engine::Model::BatchItem item;
    item.tokens = part;
    item.paged = &cache_;
    item.seq = seq_;
    r_.logits = model_.forward_batch(std::span(&item, 1));
    cache_.commit(seq_);
    r_.prefill_seconds += since(t0);
  }

  // Whether some layer holds more than its budget once `extra` more tokens
  // are appended: over budget x heads slots in all (head-wise), or over
  // budget in some head (uniform).
  bool over_budget_after(int64_t extra) const {
    for (int64_t l = 0; l < layers_; ++l) {
      const int64_t budget = o_.layer_budget[size_t(l)];
      int64_t total = 0, most = 0;
      for (int64_t h = 0; h < heads_; ++h) {
        const int64_t n = held_slots(cache_, seq_, l, h) + extra;
        total += n;
        most = std::max(most, n);
      }
      if (o_.head_wise ? total > budget * heads_ : most > budget) return true;
    }
    return false;
  }

  void compact_all() {
    auto t0 = Clock::now();
    std::vector<LayerScores> scores = policy_.score(view());
    if (int64_t(scores.size()) != layers_)
      throw std::logic_error("policy " + std::string(policy_.name()) + " ranked " + std::to_string(scores.size()) +
                             " layers of " + std::to_string(layers_));
    r_.scoring_seconds += since(t0);
    bool any = false;
    for (int64_t l = 0; l < layers_; ++l) any = compact_layer(l, scores[size_t(l)]) || any;
    if (any) ++r_.compactions;
    sample();
  }

  // Ranks, selects and compacts one layer; false when it kept everything.
  bool compact_layer(int64_t l, LayerScores& ls) {
    auto t0 = Clock::now();
    const int64_t len = cache_.length(seq_, l), budget = o_.layer_budget[size_t(l)];
    if (int64_t(ls.scores.size()) != heads_)
      throw std::logic_error("policy " + std::string(policy_.name()) + ": wrong head count in layer " + std::to_string(l));
    int64_t held = 0;
    for (int64_t h = 0; h < heads_; ++h) {
      auto& s = ls.scores[size_t(h)];
      if (int64_t(s.size()) != len)
        throw std::logic_error("policy " + std::string(policy_.name()) + ": " + std::to_string(s.size()) +
                               " scores for " + std::to_string(len) + " slots in layer " + std::to_string(l));
      const auto hole = cache_.hole(seq_, l, h);
      for (int64_t i = hole.begin; i < hole.end; ++i) s[size_t(i)] = -INFINITY;
      held += held_slots(cache_, seq_, l, h);
    }
    const KeepLists keep = o_.head_wise ? select_headwise(ls.scores, budget * heads_, ls.protect)
                                        : select_uniform(ls.scores, budget, ls.protect);
    int64_t kept = 0;
    for (const auto& k : keep) kept += int64_t(k.size());
    r_.scoring_seconds += since(t0);
    if (kept == held) return false;
    log_layer(l, budget, held, keep, ls);

    t0 = Clock::now();
    if (!cache_.compact(seq_, l, keep))
      throw std::runtime_error("block prefill: no room to copy a shared block while compacting layer " +
                               std::to_string(l) + " (the sequence shares blocks with a fork, prefix hit or pin)");
    r_.compaction_seconds += since(t0);
    sample();
    return true;
  }

  // What was kept and dropped, and why (the policy's ranking within the budget).
  void log_layer(int64_t l, int64_t budget, int64_t held, const KeepLists& keep, const LayerScores& ls) const {
    auto log = logger();
    if (!log->should_log(spdlog::level::debug)) return;
    int64_t kept = 0, fewest = INT64_MAX, most = 0, protect = 0, first_dropped = INT64_MAX, last_dropped = -1;
    for (int64_t h = 0; h < heads_; ++h) {
      const auto& k = keep[size_t(h)];
      kept += int64_t(k.size());
      fewest = std::min(fewest, int64_t(k.size()));
      most = std::max(most, int64_t(k.size()));
      if (size_t(h) < ls.protect.size()) protect += int64_t(ls.protect[size_t(h)].size());
      const std::vector<int32_t> pos = slot_positions(cache_, seq_, l, h);
      size_t j = 0;
      for (size_t i = 0; i < pos.size(); ++i) {
        if (j < k.size() && k[j] == int32_t(i)) { ++j; continue; }
        if (std::isinf(ls.scores[size_t(h)][i])) continue;  // a hole, not a drop
        first_dropped = std::min<int64_t>(first_dropped, pos[i]);
        last_dropped = std::max<int64_t>(last_dropped, pos[i]);
      }
    }
    log->debug("compact layer {} with {} ({}): budget {} x {} heads, kept {} of {} slots (per head {}..{}), dropped {} "
               "from positions {}..{}, {} protected",
               l, policy_.name(), o_.head_wise ? "head-wise" : "uniform", budget, heads_, kept, held, fewest, most,
               held - kept, first_dropped, last_dropped, protect);
  }

  const engine::Model& model_;
  KvCacheManager& cache_;
  SeqId seq_;
  Policy& policy_;
  const BlockPrefillOptions& o_;
  const int64_t heads_, layers_;
  BlockPrefillResult r_;
};

}  // namespace

int64_t held_bytes(const KvCacheManager& cache, SeqId seq) {
  int64_t blocks = 0;
  for (int64_t l = 0; l < cache.config().layers; ++l) blocks += int64_t(cache.layer_blocks(seq, l).blocks.size());
  return blocks * cache.bytes_per_block();
}

BlockPrefillResult block_prefill(const engine::Model& model, KvCacheManager& cache, SeqId seq,
                                 std::span<const int32_t> history, Policy& policy, const BlockPrefillOptions& options) {
  if (options.block_tokens < 1) throw std::invalid_argument("block prefill: block_tokens must be >= 1");
  if (history.empty()) throw std::invalid_argument("block prefill: empty history");
  const int64_t layers = cache.config().layers;
  if (policy.evicts()) {
    if (int64_t(options.layer_budget.size()) != layers)
      throw std::invalid_argument("block prefill: " + std::to_string(options.layer_budget.size()) + " budgets for " +
                                  std::to_string(layers) + " layers");
    for (int64_t b : options.layer_budget)
      if (b < 1) throw std::invalid_argument("block prefill: a layer budget below one slot");
  }
  return Run(model, cache, seq, policy, options).run(history);
}

}  // namespace mnemo::memory::compress
