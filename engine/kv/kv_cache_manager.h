#pragma once
// The paged KV cache: per-layer block pools, per-sequence block tables, the
// prefix index, pins and compaction. The scheduler holds only SeqIds and asks
// can_allocate / append / free / num_free_blocks; the forward pass writes
// with write() and walks layer_blocks() + k_block()/v_block().
// Not thread-safe: the engine's step loop owns it.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "engine/kv/block_allocator.h"
#include "engine/kv/kv_config.h"
#include "engine/kv/prefix_index.h"
#include "engine/kv/sequence_table.h"

namespace mnemo::engine::kv {

// Opaque handle of a sequence in the cache; value 0 is "no sequence".
struct SeqId {
  uint32_t value = 0;
  bool valid() const { return value != 0; }
  auto operator<=>(const SeqId&) const = default;
};

// Blocks a prefix hit holds references to until create() adopts them or
// release() gives them back.
struct PrefixMatch {
  int64_t num_tokens = 0;  // reusable tokens: whole blocks, never the last prompt token
  uint64_t salt = 0;
  std::vector<int32_t> tokens;
  std::vector<int32_t> blocks;
  std::vector<uint64_t> hashes;
  std::vector<ChainLink> chain;
};

// "Room for num_tokens more tokens of seq?"; an invalid seq means a new one.
// For a new sequence with a prefix hit, ask after match_prefix (the hit's
// blocks are then held) for the tokens past match.num_tokens.
struct AllocRequest {
  SeqId seq;
  int64_t num_tokens = 0;
};

// What a paged attention kernel walks for one sequence and layer: slot i is
// at block blocks[i / block_size], offset i % block_size.
struct LayerBlocks {
  std::span<const int32_t> blocks;
  int64_t length = 0;
};

// One KV head of one layer, copied out contiguously and widened to f32:
// k and v [length][head_dim].
struct HeadCopy {
  std::vector<float> k, v;
  std::vector<int32_t> positions;  // original token position of each slot
};

// A snapshot that does not fit this cache (wrong magic, version, shapes,
// element type or size).
class KvFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class KvCacheManager {
 public:
  // Throws std::invalid_argument for a configuration that cannot hold one block per layer.
  explicit KvCacheManager(KvConfig cfg);

  const KvConfig& config() const { return cfg_; }
  int64_t bytes_per_block() const { return cfg_.bytes_per_block(); }
  KvDType dtype() const { return cfg_.dtype; }

  // --- scheduler interface
  int64_t num_free_blocks() const { return alloc_.available_columns(); }
  bool can_allocate(std::span<const AllocRequest> requests) const;
  // Longest verified cached prefix of `tokens` (whole blocks, leaving at least
  // the last token to compute); takes references on the blocks.
  PrefixMatch match_prefix(std::span<const int32_t> tokens, uint64_t salt);
  void release(PrefixMatch&& match);
  SeqId create(uint64_t salt = 0);
  SeqId create(PrefixMatch&& match);
  // Grows the sequence by tokens.size() slots in every layer, copying a shared
  // partial last block first. All or nothing: false leaves it unchanged.
  [[nodiscard]] bool append(SeqId s, std::span<const int32_t> tokens);
  // Every appended token's K,V is now written in all layers: full blocks
  // become prefix-cache entries.
  void commit(SeqId s);
  // Copy-on-write child sharing all blocks; pins are not inherited. The
  // parent must be committed (no appended-but-unwritten tokens).
  SeqId fork(SeqId s);
  // Releases the blocks tail first, so the prefix is evicted last.
  void free(SeqId s);

  // --- pins: pinned blocks are neither evicted nor reused nor written until
  // every owner that pinned them unpins (a later write copies the block).
  // pin() takes a snapshot of a committed sequence's current blocks.
  void pin(SeqId s, uint64_t owner);
  void unpin(uint64_t owner);
  bool has_pins(uint64_t owner) const { return pins_.count(owner) != 0; }

  // Keeps, for each KV head h, the slots keep[h] (strictly increasing slots
  // that hold something; counts may differ by head), moved to the front;
  // frees blocks no longer needed. The layer's length becomes the largest
  // count: a head that kept fewer has a hole up to it (see hole()). A layer
  // that already has holes may be compacted again: keep lists name only
  // slots outside their head's hole (naming one aborts), and every head is
  // re-packed to the front, so a head never has more than one hole.
  // False, with nothing changed, when there is no room to copy a block that
  // another holder shares (fork, prefix hit, pin).
  [[nodiscard]] bool compact(SeqId s, int64_t layer, std::span<const std::vector<int32_t>> keep);
  // Slots [begin, end) of one head of a layer that hold nothing: the head kept
  // fewer slots than the layer's longest head at the last compaction. Empty
  // (begin == end) for an uncompacted layer or a head without one. Attention
  // never reads a hole; slots after it (tokens appended since) are ordinary.
  Hole hole(SeqId s, int64_t layer, int64_t head) const;

  // --- forward pass
  // Writes k and v ([n][kv_heads][head_dim], f32) into the last n slots of
  // the layer, converted to the cache's element type (bf16: round to nearest even).
  void write(SeqId s, int64_t layer, int64_t n, const float* k, const float* v);
  LayerBlocks layer_blocks(SeqId s, int64_t layer) const;
  // Block storage: [kv_heads][block_size][head_dim] elements of dtype()
  // (kernels/cpu/kv_rows.h reads them as f32).
  const void* k_block(int64_t layer, int32_t block) const { return alloc_.storage(layer).k(block); }
  const void* v_block(int64_t layer, int32_t block) const { return alloc_.storage(layer).v(block); }
  // Original token position per slot of one head, -1 for the slots of its
  // hole (size: the layer's length); empty while the layer was never
  // compacted (slot i holds token i).
  std::span<const int32_t> positions(SeqId s, int64_t layer, int64_t head) const;
  // The slots of one head that hold something (its hole left out), in order.
  HeadCopy gather(SeqId s, int64_t layer, int64_t head) const;

  // --- host buffers (host tier, disk snapshots); elements in dtype(), which
  // the snapshot records.
  std::vector<uint8_t> export_sequence(SeqId s) const;
  // A new sequence holding the snapshot; nullopt when the pool has no room.
  // Throws KvFormatError when the bytes do not describe a sequence of this
  // cache. An f32 snapshot imports into a bf16 cache (rounded as write()
  // rounds); a bf16 one into an f32 cache is refused: the f32 cache promises
  // values as the forward pass computed them.
  std::optional<SeqId> import_sequence(std::span<const uint8_t> bytes);

  // --- accounting and inspection
  PoolStats stats(int64_t layer) const;
  std::span<const int32_t> tokens(SeqId s) const { return seq(s).tokens; }
  int64_t length(SeqId s, int64_t layer) const { return seq(s).length(layer); }
  int64_t committed(SeqId s) const { return seq(s).committed; }
  bool compacted(SeqId s) const { return seq(s).compacted; }
  size_t num_sequences() const { return seqs_.size(); }
  const BlockAllocator& allocator() const { return alloc_; }
  const PrefixIndex& prefix_index() const { return index_; }
  // Reference counts equal table entries, pins equal pin records, free
  // structures hold exactly the unreferenced blocks. Aborts otherwise.
  void check_invariants() const;

 private:
  struct Need {
    int64_t columns = 0;             // whole columns for shared tables
    std::vector<int64_t> per_layer;  // slots for layers with their own table
  };
  SequenceTable& seq(SeqId s);
  const SequenceTable& seq(SeqId s) const;
  SeqId insert(SequenceTable t);
  void add_need(Need& need, const SequenceTable* t, int64_t n) const;
  bool fits(const Need& need) const;
  void grow_shared(SequenceTable& t, int64_t old_len, int64_t new_len);
  void grow_layer(int64_t l, LayerTable& lt, int64_t new_len, int64_t first_pos);
  void unshare_block(int64_t l, std::vector<int32_t>& blocks, size_t i);
  void index_full_blocks(SequenceTable& t);
  void drop_from_index(int32_t b);
  LayerTable& materialise(SequenceTable& t, int64_t layer);
  void check_layer_table(const LayerTable& lt, int64_t num_tokens) const;

  KvConfig cfg_;
  BlockAllocator alloc_;
  PrefixIndex index_;
  std::unordered_map<uint32_t, SequenceTable> seqs_;
  std::unordered_map<uint64_t, std::vector<std::pair<int64_t, int32_t>>> pins_;  // owner -> (layer, block)
  uint32_t next_id_ = 1;
};

}  // namespace mnemo::engine::kv

template <>
struct std::hash<mnemo::engine::kv::SeqId> {
  size_t operator()(mnemo::engine::kv::SeqId s) const noexcept { return std::hash<uint32_t>{}(s.value); }
};
