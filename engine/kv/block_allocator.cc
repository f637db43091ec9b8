#include "engine/kv/block_allocator.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/kv/check.h"

namespace mnemo::engine::kv {

void LayerStorage::copy_block(int32_t from, int32_t to) {
  std::copy_n(k(from), half_, k(to));
  std::copy_n(v(from), half_, v(to));
}

namespace {

// The budget and shapes come from flags and model files: a bad value is a
// configuration error to report, not an invariant to abort on.
int32_t checked_block_count(const KvConfig& cfg) {
  if (cfg.layers <= 0 || cfg.kv_heads <= 0 || cfg.head_dim <= 0 || cfg.block_size <= 0)
    throw std::invalid_argument("KV cache: layers, kv_heads, head_dim and block_size must be positive");
  if (cfg.dtype != KvDType::F32 && cfg.dtype != KvDType::BF16)
    throw std::invalid_argument("KV cache: element type must be f32 or bf16");
  const int64_t blocks = cfg.blocks_per_layer();
  if (blocks <= 0)
    throw std::invalid_argument("KV cache: byte budget " + std::to_string(cfg.bytes_budget) +
                                " is less than one block per layer (" +
                                std::to_string(cfg.layers * cfg.bytes_per_block()) + " bytes)");
  if (blocks > std::numeric_limits<int32_t>::max() / 2)
    throw std::invalid_argument("KV cache: " + std::to_string(blocks) + " blocks per layer is too many");
  return int32_t(blocks);
}

}  // namespace

BlockAllocator::BlockAllocator(const KvConfig& cfg)
    : num_blocks_(checked_block_count(cfg)),
      live_layers_(num_blocks_, 0),
      cached_(num_blocks_, false),
      lru_(num_blocks_) {
  layers_.reserve(cfg.layers);
  for (int64_t l = 0; l < cfg.layers; ++l) layers_.emplace_back(cfg, num_blocks_);
  // Lowest ids on top of the stack, so allocation order is easy to read in tests.
  for (int32_t b = num_blocks_ - 1; b >= 0; --b) clean_.push_back(b);
}

void BlockAllocator::drop_content(int32_t b) {
  if (!cached_[b]) return;
  if (on_evict) on_evict(b);
  cached_[b] = false;
}

int32_t BlockAllocator::take_column() {
  int32_t b;
  if (!clean_.empty()) {
    b = clean_.back();
    clean_.pop_back();
  } else if (!lru_.empty()) {
    b = lru_.pop_front();
    drop_content(b);
  } else {
    return -1;
  }
  // A free column enters the live world with every layer stranded; the
  // caller's refs then move the used layers out of the stranded lists.
  for (auto& L : layers_) L.stranded.push_back(b);
  return b;
}

int32_t BlockAllocator::acquire_column(const std::vector<bool>& use) {
  MNEMO_KV_CHECK(std::find(use.begin(), use.end(), true) != use.end(), "column used by no layer");
  int32_t b = take_column();
  if (b < 0) return -1;
  for (int64_t l = 0; l < num_layers(); ++l)
    if (use[l]) ref(l, b);
  return b;
}

int32_t BlockAllocator::acquire_in_layer(int64_t l) {
  Layer& L = layers_[l];
  if (!L.stranded.empty()) {
    int32_t b = L.stranded.front();
    // The column's content in this layer is about to change: no prefix hit
    // may hand it out any more.
    drop_content(b);
    ref(l, b);
    return b;
  }
  int32_t b = take_column();
  if (b < 0) return -1;
  ref(l, b);
  return b;
}

void BlockAllocator::became_live(int64_t l, int32_t b) {
  Layer& L = layers_[l];
  if (live_layers_[b] == 0 && lru_.contains(b)) {
    // A prefix hit revives a cached column in place.
    lru_.remove(b);
    for (auto& other : layers_) other.stranded.push_back(b);
  }
  MNEMO_KV_CHECK(L.stranded.contains(b), "referencing a block that is neither live, stranded nor cached");
  L.stranded.remove(b);
  ++live_layers_[b];
  ++L.used;
}

void BlockAllocator::became_free(int64_t l, int32_t b) {
  Layer& L = layers_[l];
  --L.used;
  L.stranded.push_back(b);
  if (--live_layers_[b] > 0) return;
  for (auto& other : layers_) other.stranded.remove(b);
  if (cached_[b]) lru_.push_back(b); else clean_.push_back(b);
}

void BlockAllocator::ref(int64_t l, int32_t b) {
  Layer& L = layers_[l];
  if (!live(L, b)) became_live(l, b);
  ++L.refs[b];
}

void BlockAllocator::unref(int64_t l, int32_t b) {
  Layer& L = layers_[l];
  MNEMO_KV_CHECK(L.refs[b] > 0, "double free of a block");
  --L.refs[b];
  if (!live(L, b)) became_free(l, b);
}

void BlockAllocator::pin(int64_t l, int32_t b) {
  Layer& L = layers_[l];
  MNEMO_KV_CHECK(live(L, b), "pinning a block nobody holds");
  if (L.pins[b]++ == 0) ++L.pinned;
}

void BlockAllocator::unpin(int64_t l, int32_t b) {
  Layer& L = layers_[l];
  MNEMO_KV_CHECK(L.pins[b] > 0, "unpinning a block that is not pinned");
  if (--L.pins[b] == 0) --L.pinned;
  if (!live(L, b)) became_free(l, b);
}

PoolStats BlockAllocator::stats(int64_t l) const {
  const Layer& L = layers_[l];
  PoolStats s;
  s.blocks = num_blocks_;
  s.bytes_per_block = 0;  // filled in by the cache, which knows the shapes
  s.used = L.used;
  s.free = num_blocks_ - L.used;
  s.cached = lru_.size();
  s.pinned = L.pinned;
  s.stranded = L.stranded.size();
  return s;
}

void BlockAllocator::check_consistency() const {
  std::vector<int32_t> in_clean(num_blocks_, 0);
  for (int32_t b : clean_) ++in_clean[b];
  for (int32_t b = 0; b < num_blocks_; ++b) {
    int32_t live_count = 0;
    for (const auto& L : layers_) {
      MNEMO_KV_CHECK(L.refs[b] >= 0 && L.pins[b] >= 0, "negative count");
      bool is_live = live(L, b);
      live_count += is_live;
      if (live_layers_[b] > 0)
        MNEMO_KV_CHECK(is_live != L.stranded.contains(b), "live column slot neither live nor stranded");
      else
        MNEMO_KV_CHECK(!L.stranded.contains(b), "free column listed as stranded");
    }
    MNEMO_KV_CHECK(live_count == live_layers_[b], "live layer count drifted");
    bool free_col = live_layers_[b] == 0;
    int32_t listed = in_clean[b] + int32_t(lru_.contains(b));
    MNEMO_KV_CHECK(free_col ? listed == 1 : listed == 0, "block both free and referenced, or leaked");
    if (lru_.contains(b)) MNEMO_KV_CHECK(cached_[b], "uncached block in the LRU queue");
    if (in_clean[b]) MNEMO_KV_CHECK(!cached_[b], "cached block on the clean stack");
  }
  for (const auto& L : layers_) {
    int64_t used = 0, pinned = 0;
    for (int32_t b = 0; b < num_blocks_; ++b) {
      used += live(L, b);
      pinned += L.pins[b] > 0;
    }
    MNEMO_KV_CHECK(used == L.used && pinned == L.pinned, "layer counters drifted");
  }
}

}  // namespace mnemo::engine::kv
