#include "engine/model/safetensors_writer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace mnemo::engine {

uint64_t write_safetensors(const std::filesystem::path& file, const std::vector<const TensorData*>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const TensorData* t : tensors) {
    header[t->name] = {{"dtype", std::string(kernels::dtype_name(t->dtype))},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->bytes.size()}}};
    offset += t->bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(file.string() + ": cannot write");
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), std::streamsize(text.size()));
  for (const TensorData* t : tensors) out.write(reinterpret_cast<const char*>(t->bytes.data()), std::streamsize(t->bytes.size()));
  if (!out) throw std::runtime_error(file.string() + ": write failed");
  return offset;
}

}  // namespace mnemo::engine
