#pragma once
// Writes tensors in the safetensors format (used by the model generator).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace mnemo::engine {

struct TensorData {
  std::string name;
  kernels::DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // little-endian elements
};

// Header padded with spaces to a multiple of 8 so the data stays aligned.
// Returns the number of bytes of tensor data written.
uint64_t write_safetensors(const std::filesystem::path& file, const std::vector<const TensorData*>& tensors);

}  // namespace mnemo::engine
