#pragma once
// A read-only memory map of a whole file (model weights are never copied).
#include <cstdint>
#include <filesystem>
#include <span>

namespace mnemo::engine {

class MappedFile {
 public:
  static MappedFile open(const std::filesystem::path& path);  // throws ModelError
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mnemo::engine
