#pragma once
// The bytes of a whole file, read-only: mapped from the page cache, or read
// once into anonymous huge-page memory.
#include <cstdint>
#include <filesystem>
#include <span>

namespace mnemo::engine {

// Where the bytes live once opened. Mapped serves straight from the page
// cache (mapped at a 2 MB boundary and advised for huge pages, so the parts
// the cache holds in 2 MB folios map as huge pages; the rest are 4 KB).
// Resident reads the file (pread, never mapped, so the process holds one
// copy) into anonymous memory backed by 2 MB pages and shifted so a
// safetensors data section starts on a cache line; decode streams that
// faster (see bench/README.md, "Loading weights"), at the price of the
// time to fault in fresh memory and the page cache still holding the file
// outside the process. Resident falls back to Mapped when the memory
// cannot be had.
enum class Residency { Mapped, Resident };

class MappedFile {
 public:
  static MappedFile open(const std::filesystem::path& path, Residency r = Residency::Mapped);  // throws ModelError
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }
  bool resident() const { return resident_; }  // false: served from the page cache

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_size_ = 0;             // of the mapping, rounded up to 2 MB
  const uint8_t* map_base_ = nullptr;  // start of that mapping (a resident data_ sits a few bytes in)
  bool resident_ = false;
  void release();
};

}  // namespace mnemo::engine
