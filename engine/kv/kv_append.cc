// Growing sequences: capacity checks, block allocation with copy-on-write of
// a shared partial last block, and the forward pass's writes.
#include <algorithm>

#include "engine/kv/check.h"
#include "engine/kv/kv_cache_manager.h"
#include "kernels/cpu/kv_rows.h"

namespace mnemo::engine::kv {
namespace {

int64_t blocks_for(int64_t tokens, int64_t bs) { return (tokens + bs - 1) / bs; }

}  // namespace

void KvCacheManager::add_need(Need& need, const SequenceTable* t, int64_t n) const {
  const int64_t bs = cfg_.block_size;
  if (n <= 0) return;
  if (!t) {
    need.columns += blocks_for(n, bs);
    return;
  }
  if (t->any_shared_layer()) {
    const int64_t len = int64_t(t->tokens.size());
    need.columns += blocks_for(len + n, bs) - int64_t(t->shared.size());
    if (len % bs != 0) {
      const std::vector<bool> use = t->shared_layers();
      for (int64_t l = 0; l < cfg_.layers; ++l)
        if (use[l] && alloc_.shared(l, t->shared.back())) {
          ++need.columns;
          break;
        }
    }
  }
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    if (!t->own[l]) continue;
    const LayerTable& lt = *t->own[l];
    need.per_layer[l] += blocks_for(lt.length + n, bs) - int64_t(lt.blocks.size());
    if (lt.length % bs != 0 && alloc_.shared(l, lt.blocks.back())) ++need.per_layer[l];
  }
}

bool KvCacheManager::fits(const Need& need) const {
  // A fresh column taken for one layer leaves a stranded slot in every other
  // layer, so per-layer needs overlap: the largest shortfall decides.
  int64_t extra = 0;
  for (int64_t l = 0; l < cfg_.layers; ++l)
    extra = std::max(extra, need.per_layer[l] - alloc_.stranded(l));
  return need.columns + extra <= alloc_.available_columns();
}

bool KvCacheManager::can_allocate(std::span<const AllocRequest> requests) const {
  Need need{0, std::vector<int64_t>(size_t(cfg_.layers), 0)};
  for (const AllocRequest& r : requests) add_need(need, r.seq.valid() ? &seq(r.seq) : nullptr, r.num_tokens);
  return fits(need);
}

bool KvCacheManager::append(SeqId s, std::span<const int32_t> tokens) {
  SequenceTable& t = seq(s);
  const int64_t n = int64_t(tokens.size());
  if (n == 0) return true;
  Need need{0, std::vector<int64_t>(size_t(cfg_.layers), 0)};
  add_need(need, &t, n);
  if (!fits(need)) return false;
  const int64_t first_pos = int64_t(t.tokens.size());
  if (t.any_shared_layer()) grow_shared(t, first_pos, first_pos + n);
  for (int64_t l = 0; l < cfg_.layers; ++l)
    if (t.own[l]) grow_layer(l, *t.own[l], t.own[l]->length + n, first_pos);
  t.tokens.insert(t.tokens.end(), tokens.begin(), tokens.end());
  return true;
}

void KvCacheManager::grow_shared(SequenceTable& t, int64_t old_len, int64_t new_len) {
  const int64_t bs = cfg_.block_size;
  const std::vector<bool> use = t.shared_layers();
  if (old_len % bs != 0) {
    const int32_t old = t.shared.back();
    bool shared = false;
    for (int64_t l = 0; l < cfg_.layers; ++l) shared = shared || (use[l] && alloc_.shared(l, old));
    if (shared) {
      const int32_t copy = alloc_.acquire_column(use);
      MNEMO_KV_CHECK(copy >= 0, "capacity check passed but no column left");
      for (int64_t l = 0; l < cfg_.layers; ++l) {
        if (!use[l]) continue;
        alloc_.storage(l).copy_block(old, copy);
        alloc_.unref(l, old);
      }
      t.shared.back() = copy;
    }
  }
  while (int64_t(t.shared.size()) * bs < new_len) {
    const int32_t b = alloc_.acquire_column(use);
    MNEMO_KV_CHECK(b >= 0, "capacity check passed but no column left");
    t.shared.push_back(b);
  }
}

void KvCacheManager::unshare_block(int64_t l, std::vector<int32_t>& blocks, size_t i) {
  const int32_t old = blocks[i];
  const int32_t copy = alloc_.acquire_in_layer(l);
  MNEMO_KV_CHECK(copy >= 0, "capacity check passed but no slot left");
  alloc_.storage(l).copy_block(old, copy);
  alloc_.unref(l, old);
  blocks[i] = copy;
}

void KvCacheManager::grow_layer(int64_t l, LayerTable& lt, int64_t new_len, int64_t first_pos) {
  const int64_t bs = cfg_.block_size;
  if (lt.length % bs != 0) {
    if (alloc_.shared(l, lt.blocks.back())) unshare_block(l, lt.blocks, lt.blocks.size() - 1);
    // A compaction that kept a prefix can leave an indexed full block as
    // this layer's partial tail: the write below changes its content.
    else drop_from_index(lt.blocks.back());
  }
  while (int64_t(lt.blocks.size()) * bs < new_len) {
    const int32_t b = alloc_.acquire_in_layer(l);
    MNEMO_KV_CHECK(b >= 0, "capacity check passed but no slot left");
    lt.blocks.push_back(b);
  }
  for (auto& p : lt.positions)
    for (int64_t i = 0; i < new_len - lt.length; ++i) p.push_back(int32_t(first_pos + i));
  lt.length = new_len;
}

void KvCacheManager::write(SeqId s, int64_t layer, int64_t n, const float* k, const float* v) {
  const SequenceTable& t = seq(s);
  const int64_t len = t.length(layer), bs = cfg_.block_size, heads = cfg_.kv_heads, hd = cfg_.head_dim;
  const int64_t eb = cfg_.elem_bytes();
  MNEMO_KV_CHECK(n >= 0 && n <= len, "writing more tokens than were appended");
  const auto& blocks = t.blocks(layer);
  LayerStorage& store = alloc_.storage(layer);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t slot = len - n + i;
    const int32_t b = blocks[size_t(slot / bs)];
    // append() made the block private; a shared or indexed block here would
    // corrupt another sequence or a cached prefix.
    MNEMO_KV_CHECK(!alloc_.shared(layer, b) && !index_.indexed(b), "write into a shared or cached block");
    const int64_t off = slot % bs;
    for (int64_t h = 0; h < heads; ++h) {
      kernels::cpu::kv_row_from_f32(cfg_.dtype, k + (i * heads + h) * hd, hd, store.k(b) + (h * bs + off) * hd * eb);
      kernels::cpu::kv_row_from_f32(cfg_.dtype, v + (i * heads + h) * hd, hd, store.v(b) + (h * bs + off) * hd * eb);
    }
  }
}

}  // namespace mnemo::engine::kv
