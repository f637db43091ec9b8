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
#include <cstring>
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
    if (r == Residency::Resident) {
      try {
        const size_t shift = alignment_shift(fd, f.size_);
        data = read_resident(fd, path.string(), f.size_, shift, &f.mapped_size_);
        if (data) f.map_base_ = data - shift;
      } catch (...) {
        ::close(fd);
        throw;
      }
      if (!data) spdlog::warn("{}: no memory for a resident copy ({} MB); serving it mapped", path.string(), f.size_ >> 20);
    }
    if (!data) {
      data = map_file(fd, f.size_, &f.mapped_size_);
      f.map_base_ = data;
      f.resident_ = false;
    } else {
      f.resident_ = true;
    }
    if (!data) {
      const int err = errno;
      ::close(fd);
      throw ModelError(path.string() + ": mmap failed: " + std::strerror(err));
    }
    f.data_ = data;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("{}: {} MB {} in {:.3f} s{}", path.string(), f.size_ >> 20,
                 f.resident_ ? "read into huge pages" : "mapped", secs,
                 f.resident_ ? " on " + std::to_string(kernels::cpu::num_threads()) + " threads" : "");
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
    resident_ = std::exchange(o.resident_, false);
  }
  return *this;
}

void MappedFile::release() {
  if (map_base_) munmap(const_cast<uint8_t*>(map_base_), mapped_size_);
  data_ = map_base_ = nullptr;
}

MappedFile::~MappedFile() { release(); }

}  // namespace mnemo::engine
