#pragma once
// The safetensors header: 8-byte little-endian length, JSON, then raw data.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/dtype.h"

namespace mnemo::engine {

struct TensorInfo {
  std::string name;
  kernels::DType dtype = kernels::DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  uint64_t data_offset = 0;  // 8 + header length: where the data section starts
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses and validates the header from the first bytes of a file whose total
// size is file_size: the length prefix, the JSON, each dtype, shape and
// offset range (inside the file, matching the shape, not overlapping).
// Throws ModelError naming `source` and the tensor or field.
SafetensorsHeader parse_safetensors_header(std::span<const uint8_t> bytes, uint64_t file_size,
                                           std::string_view source);

}  // namespace mnemo::engine
