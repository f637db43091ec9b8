#include "engine/serving/start_kv.h"

#include <cstring>

namespace mnemo::engine {
namespace {

constexpr char kMagic[8] = {'M', 'N', 'E', 'M', 'O', 'K', 'V', '\0'};

class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> in) : in_(in) {}
  template <class T>
  bool get(T& x) {
    if (sizeof(T) > in_.size() - pos_) return false;
    std::memcpy(&x, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool skip(uint64_t n) {
    if (n > in_.size() - pos_) return false;
    pos_ += size_t(n);
    return true;
  }
  size_t remaining() const { return in_.size() - pos_; }
  const uint8_t* here() const { return in_.data() + pos_; }

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

std::optional<StartKvInfo> fail(std::string* why, std::string msg) {
  if (why) *why = std::move(msg);
  return std::nullopt;
}

}  // namespace

std::optional<StartKvInfo> read_start_kv(std::span<const uint8_t> bytes, const kv::KvConfig& cfg, std::string* why) {
  Cursor c(bytes);
  char magic[8];
  if (bytes.size() < sizeof(magic) || std::memcmp(bytes.data(), kMagic, sizeof(magic)) != 0)
    return fail(why, "not a Mnemo KV snapshot (bad magic)");
  c.skip(sizeof(magic));
  uint32_t version = 0, layers = 0, heads = 0, head_dim = 0, block = 0, flags = 0;
  if (!c.get(version) || !c.get(layers) || !c.get(heads) || !c.get(head_dim) || !c.get(block) || !c.get(flags))
    return fail(why, "snapshot header truncated");
  if (version < 1 || version > 3) return fail(why, "snapshot version " + std::to_string(version) + " is unknown");
  if (layers != uint32_t(cfg.layers) || heads != uint32_t(cfg.kv_heads) || head_dim != uint32_t(cfg.head_dim) ||
      block != uint32_t(cfg.block_size))
    return fail(why, "snapshot shapes (layers " + std::to_string(layers) + ", kv_heads " + std::to_string(heads) +
                         ", head_dim " + std::to_string(head_dim) + ", block_size " + std::to_string(block) +
                         ") differ from this cache's");
  // Version 3 records the element type; older snapshots are f32.
  uint32_t dtype = uint32_t(kv::KvDType::F32);
  if (version >= 3 && !c.get(dtype)) return fail(why, "snapshot header truncated");
  if (dtype > uint32_t(kv::KvDType::BF16)) return fail(why, "snapshot element type " + std::to_string(dtype) + " is unknown");
  if (kv::KvDType(dtype) == kv::KvDType::BF16 && cfg.dtype == kv::KvDType::F32)
    return fail(why, "snapshot holds bf16 keys and values and this cache stores f32");
  StartKvInfo info;
  info.compacted = (flags & 1) != 0;
  uint64_t num_tokens = 0, committed = 0;
  if (!c.get(info.salt) || !c.get(num_tokens) || !c.get(committed)) return fail(why, "snapshot header truncated");
  if (num_tokens > c.remaining() / sizeof(int32_t)) return fail(why, "snapshot tokens truncated");
  info.tokens.resize(size_t(num_tokens));
  std::memcpy(info.tokens.data(), c.here(), size_t(num_tokens) * sizeof(int32_t));
  c.skip(num_tokens * sizeof(int32_t));
  const uint64_t row = uint64_t(head_dim) * kernels::kv_dtype_size(kv::KvDType(dtype));
  for (uint32_t l = 0; l < layers; ++l) {
    uint32_t own = 0;
    uint64_t len = 0;
    if (!c.get(own) || !c.get(len)) return fail(why, "snapshot layer " + std::to_string(l) + " truncated");
    if (len > c.remaining()) return fail(why, "snapshot layer " + std::to_string(l) + " truncated");
    const uint64_t holes = own == 1 && version >= 2 ? uint64_t(heads) * 2 * sizeof(uint64_t) : 0;
    const uint64_t body = uint64_t(heads) * len * (sizeof(int32_t) + 2 * row);
    if (!c.skip(holes) || !c.skip(body)) return fail(why, "snapshot layer " + std::to_string(l) + " truncated");
    info.slots = std::max(info.slots, int64_t(len));
  }
  if (c.remaining() != 0) return fail(why, "snapshot has trailing bytes");
  return info;
}

}  // namespace mnemo::engine
