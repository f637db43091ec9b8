#include "engine/model/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <utility>

#include "engine/model/model_error.h"
#include "kernels/cpu/parallel.h"

namespace mnemo::engine {

namespace {

// Copies the file mapping into 2 MB-aligned anonymous memory advised for
// huge pages; returns nullptr when the memory cannot be had.
uint8_t* resident_copy(const void* src, size_t size, size_t shift, size_t* mapped) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t len = (size + shift + kHuge - 1) / kHuge * kHuge;
  void* p = mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  // Trim to a 2 MB boundary so every huge page is fully inside.
  auto* base = static_cast<uint8_t*>(p);
  auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + kHuge - 1) / kHuge * kHuge);
  if (aligned > base) munmap(base, size_t(aligned - base));
  const size_t tail = size_t(base + len + kHuge - (aligned + len));
  if (tail) munmap(aligned + len, tail);
  madvise(aligned, len, MADV_HUGEPAGE);
  const int64_t chunks = int64_t((size + kHuge - 1) / kHuge);
  kernels::cpu::parallel_for(chunks, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const size_t off = size_t(c) * kHuge;
      std::memcpy(aligned + shift + off, static_cast<const uint8_t*>(src) + off, std::min(kHuge, size - off));
    }
  });
  mprotect(aligned, len, PROT_READ);
  *mapped = len;
  return aligned + shift;
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
    void* p = mmap(nullptr, f.size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw ModelError(path.string() + ": mmap failed: " + std::strerror(err));
    }
    f.data_ = static_cast<const uint8_t*>(p);
    if (r == Residency::Resident) {
      // Shift the copy so a safetensors data section starts on a cache line:
      // tensors then begin 64-byte aligned, which the AVX-512 GEMV reads
      // faster than rows straddling lines.
      size_t shift = 0;
      if (f.size_ >= 8) {
        uint64_t header = 0;
        for (int i = 7; i >= 0; --i) header = header << 8 | f.data_[i];
        if (header < f.size_) shift = (64 - (8 + header) % 64) % 64;
      }
      size_t mapped = 0;
      if (uint8_t* copy = resident_copy(p, f.size_, shift, &mapped)) {
        munmap(p, f.size_);
        f.data_ = copy;
        f.mapped_size_ = mapped;
        f.map_base_ = copy - shift;
      }
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
  }
  return *this;
}

void MappedFile::release() {
  if (map_base_) munmap(const_cast<uint8_t*>(map_base_), mapped_size_);
  else if (data_) munmap(const_cast<uint8_t*>(data_), size_);
  data_ = map_base_ = nullptr;
}

MappedFile::~MappedFile() { release(); }

}  // namespace mnemo::engine
