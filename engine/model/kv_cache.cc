#include "engine/model/kv_cache.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace mnemo::engine {

KvCache::KvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t capacity)
    : layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), k_(static_cast<size_t>(layers)), v_(static_cast<size_t>(layers)) {
  reserve_more(std::max<int64_t>(capacity, 1));
}

void KvCache::reserve_more(int64_t extra) {
  const int64_t need = length_ + extra;
  if (need <= capacity_) return;
  int64_t cap = std::max<int64_t>(capacity_, 16);
  while (cap < need) cap *= 2;
  const size_t row = size_t(head_dim_);
  for (auto* store : {&k_, &v_})
    for (auto& buf : *store) {
      std::vector<float> grown(size_t(kv_heads_ * cap) * row);
      for (int64_t h = 0; h < kv_heads_ && length_ > 0; ++h)
        std::memcpy(&grown[size_t(h * cap) * row], &buf[size_t(h * capacity_) * row], size_t(length_) * row * sizeof(float));
      buf = std::move(grown);
    }
  capacity_ = cap;
}

void KvCache::truncate(int64_t length) {
  assert(length >= 0 && length <= length_);
  length_ = length;
}

kernels::cpu::KvView KvCache::layer(int64_t l) {
  return {k_[size_t(l)].data(), v_[size_t(l)].data(), capacity_, kv_heads_, head_dim_};
}

uint64_t KvCache::bytes() const { return uint64_t(2 * layers_ * kv_heads_ * capacity_ * head_dim_) * sizeof(float); }

}  // namespace mnemo::engine
