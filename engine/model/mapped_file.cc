#include "engine/model/mapped_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "engine/model/model_error.h"
#include "kernels/cpu/parallel.h"

namespace mnemo::engine {

namespace {

constexpr size_t kHuge = size_t(2) << 20;

// An address range of len bytes starting on a 2 MB boundary, reserved
// inaccessible; the caller maps over it. nullptr when none can be had.
uint8_t* reserve_aligned(size_t len) {
  void* p = mmap(nullptr, len + kHuge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* base = static_cast<uint8_t*>(p);
  auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + kHuge - 1) / kHuge * kHuge);
  if (aligned > base) munmap(base, size_t(aligned - base));
  const size_t tail = size_t(base + len + kHuge - (aligned + len));
  if (tail) munmap(aligned + len, tail);
  return aligned;
}

// Reads the whole file into 2 MB-aligned anonymous memory advised for huge
// pages, shifted by `shift` bytes. pread, not a copy from a mapping: the
// file's pages never enter the process, so its resident set holds the
// weights once (a mapping copied from would be counted too, doubling the
// peak). The team reads disjoint 2 MB pieces; each faults in (zeroes) its
// own huge pages, the larger part of the time. Returns nullptr when the
// memory cannot be had; throws ModelError when the file cannot be read.
uint8_t* read_resident(int fd, const std::string& path, size_t size, size_t shift, size_t* mapped) {
  const size_t len = (size + shift + kHuge - 1) / kHuge * kHuge;
  uint8_t* region = reserve_aligned(len);
  if (!region) return nullptr;
  if (mmap(region, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
    munmap(region, len);
    return nullptr;
  }
  madvise(region, len, MADV_HUGEPAGE);
  // Piece c covers file bytes [c * kHuge - shift, (c + 1) * kHuge - shift):
  // each destination huge page is written by one thread only.
  const int64_t pieces = int64_t(len / kHuge);
  std::atomic<int> error{0};
  std::atomic<bool> truncated{false};
  kernels::cpu::parallel_for(pieces, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1 && !error && !truncated; ++c) {
      const size_t dst_begin = std::max(size_t(c) * kHuge, shift);
      const size_t dst_end = std::min((size_t(c) + 1) * kHuge, size + shift);
      for (size_t at = dst_begin; at < dst_end;) {
        const ssize_t n = pread(fd, region + at, dst_end - at, off_t(at - shift));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          error = errno;
          break;
        }
        if (n == 0) {
          truncated = true;
          break;
        }
        at += size_t(n);
      }
    }
  });
  if (error || truncated) {
    munmap(region, len);
    throw ModelError(path + (error ? ": read failed: " + std::string(std::strerror(error)) : ": file shrank while being read"));
  }
  mprotect(region, len, PROT_READ);
  *mapped = len;
  return region + shift;
}

// Maps the file at a 2 MB-aligned address advised for huge pages: file
// offsets and addresses then agree modulo 2 MB, so page-cache folios of
// 2 MB (which faults on a huge-page mapping read ahead in) map whole.
uint8_t* map_file(int fd, size_t size, size_t* mapped) {
  const size_t len = (size + kHuge - 1) / kHuge * kHuge;
  uint8_t* region = reserve_aligned(len);
  if (!region) return nullptr;
  if (mmap(region, size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
    munmap(region, len);
    return nullptr;
  }
  madvise(region, size, MADV_HUGEPAGE);
  *mapped = len;
  return region;
}

// Served from the page cache when at least this share of the file's 2 MB
// pieces map as huge pages: decode then runs as fast as from a copy.
constexpr double kEnoughHuge = 0.9;

// The share of the whole 2 MB pieces of a map_file() mapping that the
// kernel maps as huge pages. Touching one byte per piece faults each in:
// a piece the page cache holds in one 2 MB folio maps whole, and a piece
// not cached yet is read ahead as one (the mapping is advised for huge
// pages). /proc/self/smaps then counts them.
double measure_huge_fraction(const uint8_t* p, size_t size) {
  const size_t pieces = size / kHuge;
  if (pieces == 0) return 0;
  uint8_t sum = 0;
  for (size_t i = 0; i < pieces; ++i) sum = uint8_t(sum + *static_cast<const volatile uint8_t*>(p + i * kHuge));
  (void)sum;
  char head[32];
  std::snprintf(head, sizeof head, "%lx-", reinterpret_cast<unsigned long>(p));
  std::ifstream in("/proc/self/smaps");
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(head, 0) == 0) inside = true;
    else if (inside && line.rfind("FilePmdMapped:", 0) == 0)
      return double(std::stol(line.substr(14)) << 10) / double(pieces * kHuge);
  }
  return 0;
}

// Where a safetensors data section starts, mod 64, made 0 by shifting the
// copy: tensors then begin 64-byte aligned, which the AVX-512 GEMV reads
// faster than rows straddling cache lines.
size_t alignment_shift(int fd, size_t size) {
  uint8_t b[8];
  if (size < 8 || pread(fd, b, 8, 0) != 8) return 0;
  uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = header << 8 | b[i];
  return header < size ? (64 - (8 + header) % 64) % 64 : 0;
}

}  // namespace

MappedFile MappedFile::open(const std::filesystem::path& path, Residency r) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ModelError(path.string() + ": cannot open: " + std::strerror(errno));
  struct stat st{};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ModelError(path.string() + ": not a regular file");
  }
  MappedFile f;
  f.path_ = path;
  f.size_ = size_t(st.st_size);
  if (f.size_ > 0) {
    const auto t0 = std::chrono::steady_clock::now();
    uint8_t* data = nullptr;
    const size_t shift = r == Residency::Mapped ? 0 : alignment_shift(fd, f.size_);
    if (r == Residency::Resident && shift == 0 && f.size_ >= kHuge) {
      // The page cache's own 2 MB folios serve as well as a copy and cost
      // neither fresh memory nor a second copy of the file; but only where
      // the tensors start on cache lines in the file as they would in the
      // copy (rows straddling lines decode 7-10% slower).
      data = map_file(fd, f.size_, &f.mapped_size_);
      if (data) {
        f.huge_fraction_ = measure_huge_fraction(data, f.size_);
        if (f.huge_fraction_ < kEnoughHuge) {
          munmap(data, f.mapped_size_);
          data = nullptr;
        }
      }
      if (data) f.map_base_ = data;
    }
    if (!data && r != Residency::Mapped) {
      try {
        data = read_resident(fd, path.string(), f.size_, shift, &f.mapped_size_);
        if (data) f.map_base_ = data - shift, f.copied_ = true, f.huge_fraction_ = 1;
      } catch (...) {
        ::close(fd);
        throw;
      }
      if (!data) spdlog::warn("{}: no memory for a copy ({} MB); serving it mapped", path.string(), f.size_ >> 20);
    }
    if (!data) {
      data = map_file(fd, f.size_, &f.mapped_size_);
      f.map_base_ = data;
    }
    if (!data) {
      const int err = errno;
      ::close(fd);
      throw ModelError(path.string() + ": mmap failed: " + std::strerror(err));
    }
    f.data_ = data;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (f.copied_) {
      spdlog::info("{}: {} MB read into 2 MB pages in {:.3f} s on {} threads{}", path.string(), f.size_ >> 20, secs,
                   kernels::cpu::num_threads(),
                   r != Residency::Resident ? ""
                   : shift ? " (its data section is not on a cache line in the file)"
                           : fmt::format(" (the page cache holds {:.0f}% in 2 MB pages)", 100 * f.huge_fraction_));
    } else {
      spdlog::info("{}: {} MB mapped in {:.3f} s{}", path.string(), f.size_ >> 20, secs,
                   r == Residency::Resident ? fmt::format(", {:.0f}% in the page cache's 2 MB pages", 100 * f.huge_fraction_) : "");
    }
  }
  ::close(fd);
  return f;
}

MappedFile::MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_size_ = std::exchange(o.mapped_size_, 0);
    map_base_ = std::exchange(o.map_base_, nullptr);
    copied_ = std::exchange(o.copied_, false);
    huge_fraction_ = std::exchange(o.huge_fraction_, 0.0);
  }
  return *this;
}

void MappedFile::release() {
  if (map_base_) munmap(const_cast<uint8_t*>(map_base_), mapped_size_);
  data_ = map_base_ = nullptr;
}

MappedFile::~MappedFile() { release(); }

}  // namespace mnemo::engine
