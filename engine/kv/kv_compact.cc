// Compaction (per-head selection of the slots a layer keeps) and reading a
// head back out.
#include <algorithm>
#include <numeric>

#include "engine/kv/check.h"
#include "engine/kv/kv_cache_manager.h"
#include "kernels/cpu/kv_rows.h"

namespace mnemo::engine::kv {

LayerTable& KvCacheManager::materialise(SequenceTable& t, int64_t layer) {
  if (t.own[layer]) return *t.own[layer];
  // The layer's references move from the shared table to its own copy; the
  // counts per (layer, block) do not change.
  LayerTable lt;
  lt.blocks = t.shared;
  lt.length = int64_t(t.tokens.size());
  lt.positions.assign(size_t(cfg_.kv_heads), std::vector<int32_t>(size_t(lt.length)));
  for (auto& p : lt.positions) std::iota(p.begin(), p.end(), 0);
  lt.holes.assign(size_t(cfg_.kv_heads), Hole{});
  t.own[layer] = std::move(lt);
  if (!t.any_shared_layer()) t.shared.clear();
  return *t.own[layer];
}

bool KvCacheManager::compact(SeqId s, int64_t layer, std::span<const std::vector<int32_t>> keep) {
  SequenceTable& t = seq(s);
  const int64_t bs = cfg_.block_size, hd = cfg_.head_dim, heads = cfg_.kv_heads;
  const int64_t len = t.length(layer);
  MNEMO_KV_CHECK(int64_t(keep.size()) == heads, "compact: one keep list per KV head");
  int64_t kept = 0;  // the new length: the longest keep list
  for (int64_t h = 0; h < heads; ++h) {
    const auto& k = keep[size_t(h)];
    const Hole gap = hole(s, layer, h);
    for (size_t i = 0; i < k.size(); ++i) {
      MNEMO_KV_CHECK(k[i] >= 0 && k[i] < len && (i == 0 || k[i - 1] < k[i]),
                     "compact: keep lists must be strictly increasing slots of the layer");
      MNEMO_KV_CHECK(!gap.contains(k[i]), "compact: a keep list names a slot in its head's hole");
    }
    kept = std::max(kept, int64_t(k.size()));
  }
  const int64_t new_blocks = (kept + bs - 1) / bs;
  // Blocks that receive moved entries must be private and leave the index:
  // their content stops matching any token prefix. Copies of shared ones
  // need room, checked before anything changes. Slots that become a hole
  // receive nothing, so they alone never make a block private.
  std::vector<int64_t> rewritten;
  Need need{0, std::vector<int64_t>(size_t(cfg_.layers), 0)};
  for (int64_t bi = 0; bi < new_blocks; ++bi) {
    bool moves = false;
    for (int64_t h = 0; h < heads && !moves; ++h) {
      const int64_t n = int64_t(keep[size_t(h)].size());
      for (int64_t i = bi * bs; i < std::min(n, (bi + 1) * bs); ++i)
        if (keep[size_t(h)][size_t(i)] != i) moves = true;
    }
    if (!moves) continue;
    rewritten.push_back(bi);
    need.per_layer[size_t(layer)] += alloc_.shared(layer, t.blocks(layer)[size_t(bi)]);
  }
  if (!fits(need)) return false;

  LayerTable& lt = materialise(t, layer);
  t.compacted = true;
  for (int64_t bi : rewritten) {
    if (alloc_.shared(layer, lt.blocks[size_t(bi)])) unshare_block(layer, lt.blocks, size_t(bi));
    else drop_from_index(lt.blocks[size_t(bi)]);
  }

  // keep[h][i] >= i, so walking i upwards never overwrites a slot still to be read.
  LayerStorage& store = alloc_.storage(layer);
  for (int64_t h = 0; h < heads; ++h) {
    auto& pos = lt.positions[size_t(h)];
    const int64_t n = int64_t(keep[size_t(h)].size());
    for (int64_t i = 0; i < n; ++i) {
      const int64_t src = keep[size_t(h)][size_t(i)];
      if (src == i) continue;
      const int32_t sb = lt.blocks[size_t(src / bs)], db = lt.blocks[size_t(i / bs)];
      const int64_t row = hd * cfg_.elem_bytes();
      const int64_t so = (h * bs + src % bs) * row, d = (h * bs + i % bs) * row;
      std::copy_n(store.k(sb) + so, row, store.k(db) + d);
      std::copy_n(store.v(sb) + so, row, store.v(db) + d);
      pos[size_t(i)] = pos[size_t(src)];
    }
    pos.resize(size_t(kept));
    std::fill(pos.begin() + n, pos.end(), -1);
    lt.holes[size_t(h)] = n < kept ? Hole{n, kept} : Hole{};
  }
  for (int64_t bi = int64_t(lt.blocks.size()) - 1; bi >= new_blocks; --bi) alloc_.unref(layer, lt.blocks[size_t(bi)]);
  lt.blocks.resize(size_t(new_blocks));
  lt.length = kept;
  return true;
}

Hole KvCacheManager::hole(SeqId s, int64_t layer, int64_t head) const {
  const SequenceTable& t = seq(s);
  if (!t.own[layer]) return {};
  return t.own[layer]->holes[size_t(head)];
}

std::span<const int32_t> KvCacheManager::positions(SeqId s, int64_t layer, int64_t head) const {
  const SequenceTable& t = seq(s);
  if (!t.own[layer]) return {};
  return t.own[layer]->positions[size_t(head)];
}

HeadCopy KvCacheManager::gather(SeqId s, int64_t layer, int64_t head) const {
  const SequenceTable& t = seq(s);
  const int64_t len = t.length(layer), bs = cfg_.block_size, hd = cfg_.head_dim;
  const auto& blocks = t.blocks(layer);
  const LayerStorage& store = alloc_.storage(layer);
  const Hole gap = hole(s, layer, head);
  const int64_t count = len - (gap.end - gap.begin);
  HeadCopy out;
  out.k.resize(size_t(count * hd));
  out.v.resize(size_t(count * hd));
  out.positions.reserve(size_t(count));
  int64_t row = 0;
  for (int64_t i = 0; i < len; ++i) {
    if (gap.contains(i)) {
      i = gap.end - 1;
      continue;
    }
    const int32_t b = blocks[size_t(i / bs)];
    const int64_t o = (head * bs + i % bs) * hd * cfg_.elem_bytes();
    kernels::cpu::kv_row_to_f32(cfg_.dtype, store.k(b) + o, hd, out.k.data() + row * hd);
    kernels::cpu::kv_row_to_f32(cfg_.dtype, store.v(b) + o, hd, out.v.data() + row * hd);
    out.positions.push_back(t.own[layer] ? t.own[layer]->positions[size_t(head)][size_t(i)] : int32_t(i));
    ++row;
  }
  return out;
}

}  // namespace mnemo::engine::kv
