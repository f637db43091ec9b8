#include "engine/kv/kv_cache_manager.h"

#include <spdlog/spdlog.h>

#include <stdexcept>
#include <utility>

#include "engine/kv/check.h"

namespace mnemo::engine::kv {

KvCacheManager::KvCacheManager(KvConfig cfg)
    : cfg_(std::move(cfg)), alloc_(cfg_), index_(alloc_.num_blocks()) {
  if (!cfg_.hash) throw std::invalid_argument("KV cache: no block hash function");
  // Eviction of a cached block forgets it in the index; the allocator then
  // treats the block as clean.
  alloc_.on_evict = [this](int32_t b) { index_.erase(b); };
}

SequenceTable& KvCacheManager::seq(SeqId s) {
  auto it = seqs_.find(s.value);
  MNEMO_KV_CHECK(it != seqs_.end(), "unknown sequence id");
  return it->second;
}

const SequenceTable& KvCacheManager::seq(SeqId s) const {
  auto it = seqs_.find(s.value);
  MNEMO_KV_CHECK(it != seqs_.end(), "unknown sequence id");
  return it->second;
}

SeqId KvCacheManager::insert(SequenceTable t) {
  SeqId id{next_id_++};
  seqs_.emplace(id.value, std::move(t));
  return id;
}

SeqId KvCacheManager::create(uint64_t salt) {
  SequenceTable t;
  t.salt = salt;
  t.own.resize(cfg_.layers);
  return insert(std::move(t));
}

PrefixMatch KvCacheManager::match_prefix(std::span<const int32_t> tokens, uint64_t salt) {
  PrefixMatch m;
  m.salt = salt;
  if (tokens.empty()) return m;
  const int64_t bs = cfg_.block_size;
  // The last token is always recomputed: its logits start the generation.
  const int64_t max_blocks = (int64_t(tokens.size()) - 1) / bs;
  uint64_t parent_hash = 0;
  ChainLink parent;
  for (int64_t i = 0; i < max_blocks; ++i) {
    auto block_tokens = tokens.subspan(i * bs, bs);
    uint64_t h = cfg_.hash(parent_hash, block_tokens, salt);
    int32_t b = index_.find(h, parent, block_tokens, salt);
    if (b < 0) {
      // Say why reuse stopped: a rejected hit means a collision or a parent
      // that was evicted since, a miss just means nobody computed it.
      spdlog::debug("kv prefix: block {} {}", i, index_.contains_hash(h) ? "hash found but verification failed" : "not cached");
      break;
    }
    for (int64_t l = 0; l < cfg_.layers; ++l) alloc_.ref(l, b);
    parent = index_.link(b);
    parent_hash = h;
    m.blocks.push_back(b);
    m.hashes.push_back(h);
    m.chain.push_back(parent);
  }
  m.num_tokens = int64_t(m.blocks.size()) * bs;
  m.tokens.assign(tokens.begin(), tokens.begin() + m.num_tokens);
  spdlog::debug("kv prefix: reusing {} of {} tokens ({} blocks, salt {})", m.num_tokens, tokens.size(), m.blocks.size(), salt);
  return m;
}

void KvCacheManager::release(PrefixMatch&& m) {
  for (size_t i = m.blocks.size(); i-- > 0;)
    for (int64_t l = 0; l < cfg_.layers; ++l) alloc_.unref(l, m.blocks[i]);
  m = PrefixMatch{};
}

SeqId KvCacheManager::create(PrefixMatch&& m) {
  SequenceTable t;
  t.salt = m.salt;
  t.own.resize(cfg_.layers);
  t.tokens = std::move(m.tokens);
  t.shared = std::move(m.blocks);
  t.hashes = std::move(m.hashes);
  t.chain = std::move(m.chain);
  t.committed = m.num_tokens;
  m = PrefixMatch{};
  return insert(std::move(t));
}

void KvCacheManager::commit(SeqId s) {
  SequenceTable& t = seq(s);
  t.committed = int64_t(t.tokens.size());
  index_full_blocks(t);
}

void KvCacheManager::index_full_blocks(SequenceTable& t) {
  if (t.compacted) return;
  const int64_t bs = cfg_.block_size;
  const size_t full = size_t(t.committed / bs);
  while (t.chain.size() < full) {
    const size_t i = t.chain.size();
    auto block_tokens = std::span<const int32_t>(t.tokens).subspan(i * bs, bs);
    const uint64_t parent_hash = i ? t.hashes[i - 1] : 0;
    const ChainLink parent = i ? t.chain[i - 1] : ChainLink{};
    const uint64_t h = cfg_.hash(parent_hash, block_tokens, t.salt);
    const int32_t b = t.shared[i];
    ChainLink link = index_.link(b);
    if (!index_.indexed(b)) {
      int32_t twin = index_.find(h, parent, block_tokens, t.salt);
      if (twin >= 0) {
        // Computed twice (two requests raced on one prefix): the chain goes
        // through the block indexed first, so later blocks stay findable.
        link = index_.link(twin);
      } else if (!index_.contains_hash(h)) {
        index_.insert(b, h, parent, block_tokens, t.salt);
        alloc_.set_cached(b, true);
      }
      // else: a genuine hash collision; this block stays out of the index.
    }
    t.hashes.push_back(h);
    t.chain.push_back(link);
  }
}

void KvCacheManager::drop_from_index(int32_t b) {
  if (!index_.indexed(b)) return;
  index_.erase(b);
  alloc_.set_cached(b, false);
}

SeqId KvCacheManager::fork(SeqId s) {
  SequenceTable child = seq(s);
  // Sharing slots the forward pass has yet to write would make that write
  // land in a shared block.
  MNEMO_KV_CHECK(child.committed == int64_t(child.tokens.size()), "fork of a sequence with unwritten tokens");
  for_each_entry(child, [&](int64_t l, int32_t b) { alloc_.ref(l, b); });
  return insert(std::move(child));
}

void KvCacheManager::free(SeqId s) {
  SequenceTable& t = seq(s);
  for (size_t l = 0; l < t.own.size(); ++l) {
    if (!t.own[l]) continue;
    const auto& blocks = t.own[l]->blocks;
    for (size_t i = blocks.size(); i-- > 0;) alloc_.unref(int64_t(l), blocks[i]);
  }
  const std::vector<bool> use = t.shared_layers();
  for (size_t i = t.shared.size(); i-- > 0;)
    for (int64_t l = 0; l < cfg_.layers; ++l)
      if (use[l]) alloc_.unref(l, t.shared[i]);
  seqs_.erase(s.value);
}

void KvCacheManager::pin(SeqId s, uint64_t owner) {
  MNEMO_KV_CHECK(seq(s).committed == int64_t(seq(s).tokens.size()), "pin of a sequence with unwritten tokens");
  auto& held = pins_[owner];
  for_each_entry(seq(s), [&](int64_t l, int32_t b) {
    alloc_.pin(l, b);
    held.emplace_back(l, b);
  });
}

void KvCacheManager::unpin(uint64_t owner) {
  auto it = pins_.find(owner);
  if (it == pins_.end()) return;
  for (size_t i = it->second.size(); i-- > 0;) alloc_.unpin(it->second[i].first, it->second[i].second);
  pins_.erase(it);
}

PoolStats KvCacheManager::stats(int64_t layer) const {
  PoolStats s = alloc_.stats(layer);
  s.bytes_per_block = cfg_.bytes_per_block();
  return s;
}

LayerBlocks KvCacheManager::layer_blocks(SeqId s, int64_t layer) const {
  const SequenceTable& t = seq(s);
  return {t.blocks(layer), t.length(layer)};
}

void KvCacheManager::check_layer_table(const LayerTable& lt, int64_t num_tokens) const {
  const int64_t len = lt.length;
  MNEMO_KV_CHECK(int64_t(lt.positions.size()) == cfg_.kv_heads && int64_t(lt.holes.size()) == cfg_.kv_heads,
                 "one positions list and one hole per KV head");
  bool some_head_whole = cfg_.kv_heads == 0;
  for (int64_t h = 0; h < cfg_.kv_heads; ++h) {
    const auto& p = lt.positions[size_t(h)];
    const Hole gap = lt.holes[size_t(h)];
    MNEMO_KV_CHECK(int64_t(p.size()) == len, "positions size");
    MNEMO_KV_CHECK(gap == Hole{} || (gap.begin < gap.end && gap.end <= len), "hole not inside the layer");
    some_head_whole = some_head_whole || gap.empty();
    int32_t prev = -1;
    for (int64_t i = 0; i < len; ++i) {
      if (gap.contains(i)) {
        MNEMO_KV_CHECK(p[size_t(i)] == -1, "a hole slot has a position");
        continue;
      }
      MNEMO_KV_CHECK(p[size_t(i)] > prev && p[size_t(i)] < num_tokens,
                     "a head's positions are not increasing token positions");
      prev = p[size_t(i)];
    }
  }
  // The length is the longest head's count, so some head fills it.
  MNEMO_KV_CHECK(some_head_whole, "every head of a layer has a hole");
}

void KvCacheManager::check_invariants() const {
  alloc_.check_consistency();
  const int64_t n = alloc_.num_blocks(), bs = cfg_.block_size;
  std::vector<int32_t> refs(size_t(cfg_.layers * n), 0), pins(size_t(cfg_.layers * n), 0);
  for (const auto& [id, t] : seqs_) {
    for (int64_t l = 0; l < cfg_.layers; ++l) {
      int64_t len = t.length(l);
      MNEMO_KV_CHECK(int64_t(t.blocks(l).size()) == (len + bs - 1) / bs, "table size does not match length");
      if (t.own[l]) check_layer_table(*t.own[l], int64_t(t.tokens.size()));
    }
    MNEMO_KV_CHECK(t.compacted || t.any_shared_layer(), "uncompacted sequence without a shared table");
    for_each_entry(t, [&](int64_t l, int32_t b) { ++refs[size_t(l * n + b)]; });
  }
  for (const auto& [owner, held] : pins_)
    for (auto [l, b] : held) ++pins[size_t(l * n + b)];
  for (int64_t l = 0; l < cfg_.layers; ++l)
    for (int32_t b = 0; b < n; ++b) {
      MNEMO_KV_CHECK(alloc_.refs(l, b) == refs[size_t(l * n + b)], "reference count != table entries");
      MNEMO_KV_CHECK(alloc_.pins(l, b) == pins[size_t(l * n + b)], "pin count != pin records");
    }
  for (int32_t b = 0; b < n; ++b)
    MNEMO_KV_CHECK(index_.indexed(b) == alloc_.cached(b), "index and allocator disagree on cached blocks");
}

}  // namespace mnemo::engine::kv
