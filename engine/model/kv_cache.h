#pragma once
// A contiguous KV cache for one sequence: per layer, keys and values laid out
// [kv_heads][capacity][head_dim], keys stored after RoPE. Grows by doubling.
#include <cstdint>
#include <vector>

#include "kernels/cpu/ops.h"

namespace mnemo::engine {

class KvCache {
 public:
  KvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t capacity = 64);

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  // Makes room for `extra` more positions, keeping what is stored.
  void reserve_more(int64_t extra);
  // Called by the forward pass once every layer holds the new positions.
  void advance(int64_t n) { length_ += n; }
  // Forgets positions from `length` on (e.g. to re-run a suffix).
  void truncate(int64_t length);
  kernels::cpu::KvView layer(int64_t l);
  uint64_t bytes() const;

 private:
  int64_t layers_, kv_heads_, head_dim_;
  int64_t capacity_ = 0;
  int64_t length_ = 0;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace mnemo::engine
