#include "memory/compress/policy.h"

#include <array>
#include <numeric>
#include <stdexcept>
#include <string>

#include "memory/compress/policies.h"

namespace mnemo::memory::compress {

std::span<const std::string_view> policy_names() {
  static constexpr std::array<std::string_view, 6> names{"full", "streaming", "snapkv", "h2o", "keydiff", "patched"};
  return names;
}

std::unique_ptr<Policy> make_policy(std::string_view name, const PolicyOptions& o) {
  if (name == "full") return std::make_unique<FullPolicy>();
  if (name == "streaming") return std::make_unique<StreamingPolicy>(o.sinks);
  if (name == "snapkv") return std::make_unique<SnapKvPolicy>(o.window);
  if (name == "h2o") return std::make_unique<H2oPolicy>(o.recent);
  if (name == "keydiff") return std::make_unique<KeyDiffPolicy>();
  if (name == "patched") return std::make_unique<PatchedPolicy>(o.instruction, o.text, o.patched_reduce);
  std::string known;
  for (std::string_view n : policy_names()) known += (known.empty() ? "" : ", ") + std::string(n);
  throw std::invalid_argument("unknown compression policy '" + std::string(name) + "' (known: " + known + ")");
}

std::vector<int32_t> slot_positions(const engine::kv::KvCacheManager& cache, engine::kv::SeqId seq, int64_t layer,
                                    int64_t head) {
  const auto p = cache.positions(seq, layer, head);
  if (!p.empty()) return {p.begin(), p.end()};
  std::vector<int32_t> out(size_t(cache.length(seq, layer)));
  std::iota(out.begin(), out.end(), 0);
  return out;
}

}  // namespace mnemo::memory::compress
