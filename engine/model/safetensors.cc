#include "engine/model/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "engine/model/model_error.h"

namespace mnemo::engine {
namespace {

using nlohmann::json;
using kernels::DType;

// A header larger than this is not a real model's (it would describe
// millions of tensors); refusing early bounds memory on hostile input.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void fail(std::string_view source, const std::string& what) {
  throw ModelError(std::string(source) + ": " + what);
}

DType parse_dtype(std::string_view source, const std::string& tensor, const json& v) {
  if (!v.is_string()) fail(source, "tensor '" + tensor + "': dtype must be a string");
  const std::string d = v.get<std::string>();
  if (d == "F32") return DType::F32;
  if (d == "F16") return DType::F16;
  if (d == "BF16") return DType::BF16;
  fail(source, "tensor '" + tensor + "': unsupported dtype '" + d + "' (supported: F32, F16, BF16)");
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::span<const uint8_t> bytes, uint64_t file_size,
                                           std::string_view source) {
  if (bytes.size() < 8 || file_size < 8) fail(source, "truncated: shorter than the 8-byte header length");
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = len << 8 | bytes[size_t(i)];
  if (len > kMaxHeaderBytes) fail(source, "header length " + std::to_string(len) + " is implausibly large");
  if (8 + len > file_size) fail(source, "truncated: header length " + std::to_string(len) + " runs past the end of the file");
  if (8 + len > bytes.size()) fail(source, "truncated: header of " + std::to_string(len) + " bytes not fully read");
  SafetensorsHeader h;
  h.data_offset = 8 + len;
  const uint64_t data_size = file_size - h.data_offset;

  json j;
  try {
    j = json::parse(bytes.begin() + 8, bytes.begin() + 8 + ptrdiff_t(len));
  } catch (const json::exception& e) {
    fail(source, std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(source, "header must be a JSON object");

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(source, "__metadata__ must be an object");
      for (auto m = v.begin(); m != v.end(); ++m)
        if (m.value().is_string()) h.metadata[m.key()] = m.value().get<std::string>();
      continue;
    }
    if (!v.is_object()) fail(source, "tensor '" + name + "': entry must be an object");
    if (!v.contains("dtype")) fail(source, "tensor '" + name + "': dtype is missing");
    if (!v.contains("shape") || !v["shape"].is_array()) fail(source, "tensor '" + name + "': shape must be an array");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      fail(source, "tensor '" + name + "': data_offsets must be [begin, end]");
    TensorInfo t;
    t.name = name;
    t.dtype = parse_dtype(source, name, v["dtype"]);
    uint64_t count = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail(source, "tensor '" + name + "': shape entries must be non-negative integers");
      const uint64_t n = d.get<uint64_t>();
      if (n != 0 && count > (uint64_t(1) << 48) / n) fail(source, "tensor '" + name + "': shape is implausibly large");
      count *= n;
      t.shape.push_back(int64_t(n));
    }
    for (const json& o : v["data_offsets"])
      if (!o.is_number_unsigned()) fail(source, "tensor '" + name + "': data_offsets must be non-negative integers");
    t.begin = v["data_offsets"][0].get<uint64_t>();
    t.end = v["data_offsets"][1].get<uint64_t>();
    if (t.end < t.begin) fail(source, "tensor '" + name + "': data_offsets end before begin");
    if (t.end > data_size)
      fail(source, "tensor '" + name + "': data ends at byte " + std::to_string(t.end) + " but the data section has " +
                       std::to_string(data_size) + " bytes (truncated file?)");
    const uint64_t expect = count * kernels::dtype_size(t.dtype);
    if (t.end - t.begin != expect)
      fail(source, "tensor '" + name + "': holds " + std::to_string(t.end - t.begin) + " bytes but its shape and dtype need " +
                       std::to_string(expect));
    h.tensors.push_back(std::move(t));
  }
  // Overlapping tensors would alias each other's weights: a corrupt file.
  // Empty tensors hold no bytes and cannot overlap; among the rest, each must
  // start at or after the furthest end seen so far.
  std::vector<const TensorInfo*> order;
  for (const TensorInfo& t : h.tensors)
    if (t.end > t.begin) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  const TensorInfo* furthest = nullptr;
  for (const TensorInfo* t : order) {
    if (furthest && t->begin < furthest->end) fail(source, "tensors '" + furthest->name + "' and '" + t->name + "' overlap");
    if (!furthest || t->end > furthest->end) furthest = t;
  }
  return h;
}

}  // namespace mnemo::engine
