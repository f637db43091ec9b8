#pragma once
// Block ids and their per-layer reference counts. Block id b names slot b in
// every layer's pool (a "column"), so sequences that were never compacted
// keep one block table for all layers. A compaction frees a block in one
// layer only; that slot is then "stranded" (free in its layer while other
// layers still use the column) and is handed out again by per-layer
// allocation before any whole column is taken.
//
// Column states: clean (never used or content dropped), cached (free but its
// content is in the prefix index; in the LRU queue), live (some layer holds
// a reference or a pin). Slot states per layer within a live column: live
// (ref > 0 or pinned) or stranded.
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/kv/index_list.h"
#include "engine/kv/lazy_buffer.h"
#include "engine/kv/kv_config.h"

namespace mnemo::engine::kv {

struct PoolStats {
  int64_t blocks = 0;          // per layer
  int64_t bytes_per_block = 0;
  int64_t used = 0;            // slots with a reference or a pin
  int64_t free = 0;            // blocks - used (includes cached and stranded)
  int64_t cached = 0;          // free, content still indexed, evictable (LRU)
  int64_t pinned = 0;          // slots with a pin (subset of used)
  int64_t stranded = 0;        // free in this layer, column used by another layer
};

// One layer's storage: K and V, each [blocks][kv_heads][block_size][head_dim]
// elements of the configured type. Block pointers are bytes: moving blocks
// (copy-on-write, compaction, snapshots) never needs the element type, only
// elem_bytes().
class LayerStorage {
 public:
  LayerStorage(const KvConfig& cfg, int32_t blocks)
      : half_(cfg.elems_per_half() * cfg.elem_bytes()), k_(size_t(half_) * blocks), v_(size_t(half_) * blocks) {}
  std::byte* k(int32_t b) { return k_.data() + int64_t(b) * half_; }
  std::byte* v(int32_t b) { return v_.data() + int64_t(b) * half_; }
  const std::byte* k(int32_t b) const { return k_.data() + int64_t(b) * half_; }
  const std::byte* v(int32_t b) const { return v_.data() + int64_t(b) * half_; }
  void copy_block(int32_t from, int32_t to);

 private:
  int64_t half_;  // bytes of K (or V) per block
  LazyBuffer k_, v_;
};

class BlockAllocator {
 public:
  // Throws std::invalid_argument for non-positive shapes or a budget below one block per layer.
  explicit BlockAllocator(const KvConfig& cfg);

  int32_t num_blocks() const { return num_blocks_; }
  int64_t num_layers() const { return int64_t(layers_.size()); }
  LayerStorage& storage(int64_t l) { return layers_[l].storage; }
  const LayerStorage& storage(int64_t l) const { return layers_[l].storage; }

  // Whole columns obtainable now: clean plus evictable cached ones.
  int64_t available_columns() const { return int64_t(clean_.size()) + lru_.size(); }
  int64_t stranded(int64_t l) const { return layers_[l].stranded.size(); }

  // Takes a whole column and references it in the layers marked in `use`
  // (the others become stranded); -1 when nothing is left.
  int32_t acquire_column(const std::vector<bool>& use);
  // One slot in layer l: a stranded one first, else a fresh column.
  int32_t acquire_in_layer(int64_t l);

  void ref(int64_t l, int32_t b);
  void unref(int64_t l, int32_t b);
  void pin(int64_t l, int32_t b);
  void unpin(int64_t l, int32_t b);
  int32_t refs(int64_t l, int32_t b) const { return layers_[l].refs[b]; }
  int32_t pins(int64_t l, int32_t b) const { return layers_[l].pins[b]; }
  // Writing into the slot would change what another holder sees.
  bool shared(int64_t l, int32_t b) const { return refs(l, b) > 1 || pins(l, b) > 0; }

  // The prefix index tells the allocator which columns hold indexed content,
  // so a freed column goes to the LRU queue rather than the clean stack.
  void set_cached(int32_t b, bool cached) { cached_[b] = cached; }
  bool cached(int32_t b) const { return cached_[b]; }
  // Called when indexed content is about to be overwritten or dropped.
  std::function<void(int32_t)> on_evict;

  PoolStats stats(int64_t l) const;
  std::vector<int32_t> lru_order() const { return lru_.to_vector(); }
  bool in_lru(int32_t b) const { return lru_.contains(b); }
  bool column_free(int32_t b) const { return live_layers_[b] == 0; }
  // Walks every structure; aborts on an inconsistency. For tests.
  void check_consistency() const;

 private:
  struct Layer {
    Layer(const KvConfig& cfg, int32_t n) : storage(cfg, n), refs(n, 0), pins(n, 0), stranded(n) {}
    LayerStorage storage;
    std::vector<int32_t> refs, pins;
    IndexList stranded;
    int64_t used = 0, pinned = 0;
  };
  bool live(const Layer& L, int32_t b) const { return L.refs[b] > 0 || L.pins[b] > 0; }
  int32_t take_column();
  void became_live(int64_t l, int32_t b);
  void became_free(int64_t l, int32_t b);
  void drop_content(int32_t b);

  int32_t num_blocks_;
  std::vector<Layer> layers_;
  std::vector<int32_t> live_layers_;  // per column: layers where the slot is live
  std::vector<bool> cached_;
  std::vector<int32_t> clean_;        // stack; content never reused
  IndexList lru_;                     // cached columns, least recently freed first
};

}  // namespace mnemo::engine::kv
