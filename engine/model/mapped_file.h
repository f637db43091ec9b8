#pragma once
// The bytes of a whole file, read-only: mapped from the page cache, or read
// once into anonymous huge-page memory.
#include <cstdint>
#include <filesystem>
#include <span>

namespace mnemo::engine {

// Where the bytes live once opened. Decode streams weights about 1.2-1.3x
// faster from 2 MB pages than from 4 KB ones, and 7-10% faster with rows on
// cache lines than straddling them (mnemo_load_bench), and a
// copy into fresh anonymous memory is the slow part of a load (the kernel
// zeroes every page first; several seconds for 2 GB on a VM whose host
// backs fresh memory lazily). Every mapping sits on a 2 MB boundary,
// advised for huge pages.
//  - Mapped: the page cache as it is (its 2 MB folios map whole, the rest
//    as 4 KB pages). Nothing is copied; the file counts once, as RssFile.
//  - Resident: in 2 MB pages, tensors on cache lines. The page cache's own
//    when the file's data section starts on a cache line and the cache
//    holds (or, not yet cached, reads ahead) at least 90% of the file in
//    2 MB folios; else a Copy. Either way the process holds the file once.
//  - Copy: read (pread, never mapped, so the file's pages never count in
//    the process) into anonymous 2 MB pages, shifted so a safetensors data
//    section starts on a cache line. Private memory: the kernel cannot
//    reclaim it as it can the page cache.
// Resident and Copy fall back to Mapped when the memory cannot be had.
enum class Residency { Mapped, Resident, Copy };

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
  bool copied() const { return copied_; }  // false: served from the page cache
  // The share of the bytes in 2 MB pages as opened (1 for a copy; for the
  // page cache, measured only when Resident chose between the two).
  double huge_fraction() const { return huge_fraction_; }

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_size_ = 0;             // of the mapping, rounded up to 2 MB
  const uint8_t* map_base_ = nullptr;  // start of that mapping (a resident data_ sits a few bytes in)
  bool copied_ = false;
  double huge_fraction_ = 0;
  void release();
};

}  // namespace mnemo::engine
