#pragma once
// Zeroed storage whose pages are committed on first touch: a KV pool
// sized from a byte budget costs memory only for the blocks actually used,
// and creating it does not stall on zeroing gigabytes.
#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <utility>

namespace mnemo::engine::kv {

class LazyBuffer {
 public:
  LazyBuffer() = default;
  explicit LazyBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes_ == 0) return;
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<std::byte*>(p);
  }
  LazyBuffer(LazyBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  LazyBuffer& operator=(LazyBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  LazyBuffer(const LazyBuffer&) = delete;
  LazyBuffer& operator=(const LazyBuffer&) = delete;
  ~LazyBuffer() {
    if (data_) munmap(data_, bytes_);
  }

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }

 private:
  std::byte* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace mnemo::engine::kv
