#pragma once
// An intrusive doubly linked list over the integers [0, capacity): O(1)
// push_back, pop_front and removal of any member. Used for the LRU queue of
// cached blocks and for the per-layer lists of stranded slots, where a block
// must leave the list from the middle when it is reused.
#include <cstdint>
#include <vector>

#include "engine/kv/check.h"

namespace mnemo::engine::kv {

class IndexList {
 public:
  explicit IndexList(int32_t capacity) : prev_(capacity, kOut), next_(capacity, kOut) {}

  bool empty() const { return size_ == 0; }
  int32_t size() const { return size_; }
  int32_t front() const { return head_; }
  bool contains(int32_t i) const { return prev_[i] != kOut; }

  void push_back(int32_t i) {
    MNEMO_KV_CHECK(!contains(i), "index already listed");
    prev_[i] = tail_;
    next_[i] = kEnd;
    if (tail_ == kEnd) head_ = i; else next_[tail_] = i;
    tail_ = i;
    ++size_;
  }

  void remove(int32_t i) {
    MNEMO_KV_CHECK(contains(i), "index not listed");
    int32_t p = prev_[i], n = next_[i];
    if (p == kEnd) head_ = n; else next_[p] = n;
    if (n == kEnd) tail_ = p; else prev_[n] = p;
    prev_[i] = next_[i] = kOut;
    --size_;
  }

  int32_t pop_front() {
    MNEMO_KV_CHECK(!empty(), "pop from empty list");
    int32_t i = head_;
    remove(i);
    return i;
  }

  // Members from front (evicted first) to back.
  std::vector<int32_t> to_vector() const {
    std::vector<int32_t> out;
    for (int32_t i = head_; i != kEnd; i = next_[i]) out.push_back(i);
    return out;
  }

 private:
  // kEnd terminates the chain; kOut marks "not a member", so membership is
  // one load and no separate flag array is needed.
  static constexpr int32_t kEnd = -1;
  static constexpr int32_t kOut = -2;
  std::vector<int32_t> prev_, next_;
  int32_t head_ = kEnd, tail_ = kEnd, size_ = 0;
};

}  // namespace mnemo::engine::kv
