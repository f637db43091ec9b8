// export_sequence / import_sequence: a sequence's K, V and metadata in a
// self-describing host buffer, independent of block ids and pool size.
//
// Layout (host byte order, no padding between fields):
//   header   magic "MNEMOKV\0", u32 version, u32 layers, u32 kv_heads,
//            u32 head_dim, u32 block_size, u32 flags (bit 0: compacted),
//            (version 3) u32 dtype (0 f32, 1 bf16),
//            u64 salt, u64 num_tokens, u64 committed
//   tokens   i32[num_tokens]
//   per layer: u32 has_own_table, u64 length,
//            (version >= 2, own table only) u64 hole_begin, u64 hole_end per KV head,
//            i32 positions[kv_heads][length] (-1 in a hole),
//            K[kv_heads][length][head_dim], V[kv_heads][length][head_dim]
//            in dtype (zeros in a hole)
// Versions 1 (before uneven compaction: no holes) and 2 (no dtype: f32) are
// still read, so sessions saved by an older daemon survive an upgrade.
#include <cstring>
#include <string>

#include "engine/kv/check.h"
#include "engine/kv/kv_cache_manager.h"
#include "kernels/cpu/kv_rows.h"

namespace mnemo::engine::kv {
namespace {

constexpr char kMagic[8] = {'M', 'N', 'E', 'M', 'O', 'K', 'V', '\0'};
constexpr uint32_t kVersion = 3;
constexpr uint32_t kOldestVersion = 1;

class Writer {
 public:
  template <class T>
  void put(const T& x) { put_raw(&x, sizeof(T)); }
  void put_raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  std::vector<uint8_t> out;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  template <class T>
  T get(const char* what) {
    T x;
    get_raw(&x, sizeof(T), what);
    return x;
  }
  void get_raw(void* p, size_t n, const char* what) {
    if (n > in_.size() - pos_)
      throw KvFormatError(std::string("kv snapshot truncated while reading ") + what + " at byte " +
                          std::to_string(pos_) + " of " + std::to_string(in_.size()));
    if (n > 0) std::memcpy(p, in_.data() + pos_, n);  // an empty span may have no data pointer
    pos_ += n;
  }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

void expect_field(const char* field, uint64_t got, uint64_t want) {
  if (got != want)
    throw KvFormatError(std::string("kv snapshot ") + field + " is " + std::to_string(got) +
                        ", this cache has " + std::to_string(want));
}

struct LayerImage {
  bool own = false;
  int64_t length = 0;
  std::vector<std::vector<int32_t>> positions;
  std::vector<Hole> holes;
  std::vector<uint8_t> k, v;  // [kv_heads][length][head_dim] in the snapshot's dtype
};

// Holes and positions of an own table as a well-formed cache holds them
// (check_invariants' rules), or the reason they are not.
std::string bad_layer_table(const LayerImage& img, uint64_t num_tokens) {
  bool some_head_whole = img.holes.empty();
  for (size_t h = 0; h < img.holes.size(); ++h) {
    const Hole gap = img.holes[h];
    if (!gap.empty() && (gap.begin < 0 || gap.end > img.length))
      return "head " + std::to_string(h) + " has a hole outside the layer";
    some_head_whole = some_head_whole || gap.empty();
    int64_t prev = -1;
    for (int64_t i = 0; i < img.length; ++i) {
      const int64_t p = img.positions[h][size_t(i)];
      if (gap.contains(i)) {
        if (p != -1) return "head " + std::to_string(h) + " has a position in its hole";
      } else if (p <= prev || p >= int64_t(num_tokens)) {
        return "head " + std::to_string(h) + " slot " + std::to_string(i) + " has position " + std::to_string(p);
      } else {
        prev = p;
      }
    }
  }
  return some_head_whole ? "" : "every head has a hole";
}

}  // namespace

std::vector<uint8_t> KvCacheManager::export_sequence(SeqId s) const {
  const SequenceTable& t = seq(s);
  const int64_t heads = cfg_.kv_heads, hd = cfg_.head_dim;
  Writer w;
  w.put_raw(kMagic, sizeof(kMagic));
  for (uint32_t x : {kVersion, uint32_t(cfg_.layers), uint32_t(heads), uint32_t(hd), uint32_t(cfg_.block_size),
                     uint32_t(t.compacted ? 1 : 0), uint32_t(cfg_.dtype)})
    w.put(x);
  w.put(t.salt);
  w.put(uint64_t(t.tokens.size()));
  w.put(uint64_t(t.committed));
  w.put_raw(t.tokens.data(), t.tokens.size() * sizeof(int32_t));
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    w.put(uint32_t(t.own[l] ? 1 : 0));
    const int64_t len = t.length(l), bs = cfg_.block_size;
    w.put(uint64_t(len));
    std::vector<Hole> holes(static_cast<size_t>(heads));
    for (int64_t h = 0; h < heads; ++h) holes[size_t(h)] = hole(s, l, h);
    if (t.own[l])
      for (const Hole& gap : holes) {
        w.put(uint64_t(gap.begin));
        w.put(uint64_t(gap.end));
      }
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < len; ++i)
        w.put(t.own[l] ? t.own[l]->positions[size_t(h)][size_t(i)] : int32_t(i));
    // Slot by slot, so a hole is written as zeros rather than whatever its
    // memory held.
    const LayerStorage& store = alloc_.storage(l);
    const int64_t row = hd * cfg_.elem_bytes();
    const std::vector<std::byte> zeros(size_t(row), std::byte{0});  // 0.0 in f32 and bf16 alike
    for (bool is_v : {false, true})
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < len; ++i) {
          const int32_t b = t.blocks(l)[size_t(i / bs)];
          const std::byte* src = holes[size_t(h)].contains(i) ? zeros.data()
                                 : (is_v ? store.v(b) : store.k(b)) + (h * bs + i % bs) * row;
          w.put_raw(src, size_t(row));
        }
  }
  return std::move(w.out);
}

std::optional<SeqId> KvCacheManager::import_sequence(std::span<const uint8_t> bytes) {
  Reader r(bytes);
  char magic[8];
  r.get_raw(magic, sizeof(magic), "magic");
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) throw KvFormatError("kv snapshot: bad magic, not a Mnemo KV snapshot");
  const uint32_t version = r.get<uint32_t>("version");
  if (version < kOldestVersion || version > kVersion) expect_field("version", version, kVersion);
  expect_field("layers", r.get<uint32_t>("layers"), uint64_t(cfg_.layers));
  expect_field("kv_heads", r.get<uint32_t>("kv_heads"), uint64_t(cfg_.kv_heads));
  expect_field("head_dim", r.get<uint32_t>("head_dim"), uint64_t(cfg_.head_dim));
  expect_field("block_size", r.get<uint32_t>("block_size"), uint64_t(cfg_.block_size));
  const uint32_t flags = r.get<uint32_t>("flags");
  if (flags > 1) throw KvFormatError("kv snapshot: unknown flags " + std::to_string(flags));
  const uint32_t dtype_code = version >= 3 ? r.get<uint32_t>("dtype") : uint32_t(KvDType::F32);
  if (dtype_code > uint32_t(KvDType::BF16))
    throw KvFormatError("kv snapshot: unknown element type " + std::to_string(dtype_code));
  const KvDType dtype = KvDType(dtype_code);
  if (dtype == KvDType::BF16 && cfg_.dtype == KvDType::F32)
    throw KvFormatError("kv snapshot holds bf16 keys and values, this cache stores f32 (--kv-dtype f32): "
                        "widening would not give back the values an f32 cache computes");
  SequenceTable t;
  t.salt = r.get<uint64_t>("salt");
  const uint64_t num_tokens = r.get<uint64_t>("num_tokens");
  const uint64_t committed = r.get<uint64_t>("committed");
  if (num_tokens > r.remaining() / sizeof(int32_t)) throw KvFormatError("kv snapshot: num_tokens exceeds the buffer");
  if (committed > num_tokens) throw KvFormatError("kv snapshot: committed exceeds num_tokens");
  t.compacted = (flags & 1) != 0;
  t.committed = int64_t(committed);
  t.tokens.resize(num_tokens);
  r.get_raw(t.tokens.data(), num_tokens * sizeof(int32_t), "tokens");

  const int64_t heads = cfg_.kv_heads, hd = cfg_.head_dim, bs = cfg_.block_size;
  std::vector<LayerImage> layers(size_t(cfg_.layers));
  Need need{0, std::vector<int64_t>(size_t(cfg_.layers), 0)};
  bool any_shared = false;
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    LayerImage& img = layers[size_t(l)];
    const uint32_t own = r.get<uint32_t>("layer table flag");
    const uint64_t len = r.get<uint64_t>("layer length");
    if (own > 1) throw KvFormatError("kv snapshot: layer " + std::to_string(l) + " has a bad table flag");
    if (own == 0 && len != num_tokens)
      throw KvFormatError("kv snapshot: layer " + std::to_string(l) + " shares the table but its length " +
                          std::to_string(len) + " differs from num_tokens " + std::to_string(num_tokens));
    if (own == 1 && !t.compacted) throw KvFormatError("kv snapshot: own layer table in an uncompacted sequence");
    const uint64_t row = uint64_t(hd) * kernels::kv_dtype_size(dtype);
    const uint64_t per_head = len * uint64_t(sizeof(int32_t) + 2 * row);
    if (len > r.remaining() || per_head * uint64_t(heads) > r.remaining())
      throw KvFormatError("kv snapshot truncated: layer " + std::to_string(l) + " length " + std::to_string(len) +
                          " exceeds the " + std::to_string(r.remaining()) + " bytes left");
    img.own = own == 1;
    img.length = int64_t(len);
    img.holes.assign(size_t(heads), Hole{});
    if (img.own && version >= 2)
      for (Hole& gap : img.holes) {
        const uint64_t b = r.get<uint64_t>("hole begin"), e = r.get<uint64_t>("hole end");
        if (b > len || e > len) throw KvFormatError("kv snapshot: layer " + std::to_string(l) + " has a hole past its length");
        if (b < e) gap = Hole{int64_t(b), int64_t(e)};
      }
    img.positions.assign(size_t(heads), std::vector<int32_t>(len));
    for (auto& p : img.positions) r.get_raw(p.data(), len * sizeof(int32_t), "positions");
    if (img.own)
      if (std::string why = bad_layer_table(img, num_tokens); !why.empty())
        throw KvFormatError("kv snapshot: layer " + std::to_string(l) + ": " + why);
    img.k.resize(size_t(heads) * len * row);
    img.v.resize(img.k.size());
    r.get_raw(img.k.data(), img.k.size(), "keys");
    r.get_raw(img.v.data(), img.v.size(), "values");
    if (img.own) need.per_layer[size_t(l)] = (img.length + bs - 1) / bs;
    else any_shared = true;
  }
  if (r.remaining() != 0) throw KvFormatError("kv snapshot: " + std::to_string(r.remaining()) + " trailing bytes");
  if (!t.compacted && !any_shared) throw KvFormatError("kv snapshot: uncompacted sequence without a shared table");
  if (any_shared) need.columns = (int64_t(num_tokens) + bs - 1) / bs;
  if (!fits(need)) return std::nullopt;

  t.own.resize(size_t(cfg_.layers));
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    if (!layers[size_t(l)].own) continue;
    LayerTable lt;
    lt.positions = std::move(layers[size_t(l)].positions);
    lt.holes = std::move(layers[size_t(l)].holes);
    t.own[l] = std::move(lt);
  }
  if (any_shared) grow_shared(t, 0, int64_t(num_tokens));
  for (int64_t l = 0; l < cfg_.layers; ++l)
    if (t.own[l]) {
      LayerTable& lt = *t.own[l];
      // grow_layer appends positions; the snapshot's own are restored after.
      auto saved = std::move(lt.positions);
      lt.positions.assign(size_t(heads), {});
      grow_layer(l, lt, layers[size_t(l)].length, 0);
      lt.positions = std::move(saved);
    }

  // Rows are copied as they are, or (an f32 snapshot in a bf16 cache)
  // rounded exactly as write() would have rounded them.
  const int64_t src_row = hd * int64_t(kernels::kv_dtype_size(dtype)), dst_row = hd * cfg_.elem_bytes();
  auto put_row = [&](std::byte* dst, const uint8_t* src) {
    if (dtype == cfg_.dtype) std::memcpy(dst, src, size_t(dst_row));
    else kernels::cpu::kv_row_from_f32(cfg_.dtype, reinterpret_cast<const float*>(src), hd, dst);
  };
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    const LayerImage& img = layers[size_t(l)];
    const auto& blocks = t.blocks(l);
    LayerStorage& store = alloc_.storage(l);
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < img.length; ++i) {
        const int32_t b = blocks[size_t(i / bs)];
        const int64_t src = (h * img.length + i) * src_row, dst = (h * bs + i % bs) * dst_row;
        put_row(store.k(b) + dst, img.k.data() + src);
        put_row(store.v(b) + dst, img.v.data() + src);
      }
  }
  index_full_blocks(t);
  return insert(std::move(t));
}

}  // namespace mnemo::engine::kv
