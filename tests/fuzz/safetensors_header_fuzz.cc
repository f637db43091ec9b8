// libFuzzer target: the input is a whole .safetensors file, as the loader
// maps it. ModelError is the only acceptable way to refuse it; on success the
// header must describe tensors the loader can use without further checks.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "engine/model/model_error.h"
#include "engine/model/safetensors.h"

namespace {

using mnemo::engine::SafetensorsHeader;
using mnemo::engine::TensorInfo;

[[noreturn]] void violated(const char* what, const TensorInfo* t) {
  std::fprintf(stderr, "safetensors invariant violated: %s (tensor '%s')\n", what, t ? t->name.c_str() : "");
  std::abort();
}

void check(const SafetensorsHeader& h, uint64_t file_size) {
  if (h.data_offset < 8 || h.data_offset > file_size) violated("data_offset outside the file", nullptr);
  const uint64_t data_size = file_size - h.data_offset;
  std::vector<const TensorInfo*> nonempty;
  for (const TensorInfo& t : h.tensors) {
    if (t.begin > t.end || t.end > data_size) violated("offsets outside the data section", &t);
    uint64_t count = 1;
    for (int64_t d : t.shape) {
      if (d < 0) violated("negative dimension", &t);
      count *= uint64_t(d);
    }
    if (t.end - t.begin != count * mnemo::kernels::dtype_size(t.dtype)) violated("size does not match shape", &t);
    if (t.end > t.begin) nonempty.push_back(&t);
  }
  // Two tensors sharing bytes would alias each other's weights.
  std::sort(nonempty.begin(), nonempty.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < nonempty.size(); ++i)
    if (nonempty[i]->begin < nonempty[i - 1]->end) violated("tensors overlap", nonempty[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  try {
    check(mnemo::engine::parse_safetensors_header(bytes, size, "fuzz.safetensors"), size);
  } catch (const mnemo::engine::ModelError&) {
  }
  return 0;
}
