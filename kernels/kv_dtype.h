#pragma once
// Element type of the paged KV cache. Separate from DType (weights on disk):
// the cache only ever holds f32 or bf16, so no other value can reach it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mnemo::kernels {

// BF16 halves the bytes decode attention reads per token and doubles the
// tokens a pool holds; each element keeps 8 significant bits (relative
// rounding error <= 2^-9). F32 stores what the forward pass computed, exactly.
enum class KvDType : uint8_t { F32 = 0, BF16 = 1 };

constexpr size_t kv_dtype_size(KvDType t) { return t == KvDType::F32 ? 4 : 2; }

constexpr std::string_view kv_dtype_name(KvDType t) { return t == KvDType::F32 ? "f32" : "bf16"; }

// "f32" or "bf16" (lower case, as flags spell them); nullopt otherwise.
constexpr std::optional<KvDType> parse_kv_dtype(std::string_view s) {
  if (s == "f32") return KvDType::F32;
  if (s == "bf16") return KvDType::BF16;
  return std::nullopt;
}

}  // namespace mnemo::kernels
