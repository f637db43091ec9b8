// export_sequence / import_sequence: a sequence's K, V and metadata in a
// self-describing host buffer, independent of block ids and pool size.
//
// Layout (host byte order, no padding between fields):
//   header   magic "MNEMOKV\0", u32 version, u32 layers, u32 kv_heads,
//            u32 head_dim, u32 block_size, u32 flags (bit 0: compacted),
//            u64 salt, u64 num_tokens, u64 committed
//   tokens   i32[num_tokens]
//   per layer: u32 has_own_table, u64 length,
//            i32 positions[kv_heads][length], f32 K[kv_heads][length][head_dim],
//            f32 V[kv_heads][length][head_dim]
#include <cstring>
#include <string>

#include "engine/kv/check.h"
#include "engine/kv/kv_cache_manager.h"

namespace mnemo::engine::kv {
namespace {

constexpr char kMagic[8] = {'M', 'N', 'E', 'M', 'O', 'K', 'V', '\0'};
constexpr uint32_t kVersion = 1;

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
  std::vector<float> k, v;  // [kv_heads][length][head_dim]
};

}  // namespace

std::vector<uint8_t> KvCacheManager::export_sequence(SeqId s) const {
  const SequenceTable& t = seq(s);
  const int64_t heads = cfg_.kv_heads, hd = cfg_.head_dim;
  Writer w;
  w.put_raw(kMagic, sizeof(kMagic));
  for (uint32_t x : {kVersion, uint32_t(cfg_.layers), uint32_t(heads), uint32_t(hd), uint32_t(cfg_.block_size),
                     uint32_t(t.compacted ? 1 : 0)})
    w.put(x);
  w.put(t.salt);
  w.put(uint64_t(t.tokens.size()));
  w.put(uint64_t(t.committed));
  w.put_raw(t.tokens.data(), t.tokens.size() * sizeof(int32_t));
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    w.put(uint32_t(t.own[l] ? 1 : 0));
    w.put(uint64_t(t.length(l)));
    std::vector<HeadCopy> per_head;
    for (int64_t h = 0; h < heads; ++h) per_head.push_back(gather(s, l, h));
    for (const auto& c : per_head) w.put_raw(c.positions.data(), c.positions.size() * sizeof(int32_t));
    for (const auto& c : per_head) w.put_raw(c.k.data(), c.k.size() * sizeof(float));
    for (const auto& c : per_head) w.put_raw(c.v.data(), c.v.size() * sizeof(float));
  }
  return std::move(w.out);
}

std::optional<SeqId> KvCacheManager::import_sequence(std::span<const uint8_t> bytes) {
  Reader r(bytes);
  char magic[8];
  r.get_raw(magic, sizeof(magic), "magic");
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) throw KvFormatError("kv snapshot: bad magic, not a Mnemo KV snapshot");
  expect_field("version", r.get<uint32_t>("version"), kVersion);
  expect_field("layers", r.get<uint32_t>("layers"), uint64_t(cfg_.layers));
  expect_field("kv_heads", r.get<uint32_t>("kv_heads"), uint64_t(cfg_.kv_heads));
  expect_field("head_dim", r.get<uint32_t>("head_dim"), uint64_t(cfg_.head_dim));
  expect_field("block_size", r.get<uint32_t>("block_size"), uint64_t(cfg_.block_size));
  const uint32_t flags = r.get<uint32_t>("flags");
  if (flags > 1) throw KvFormatError("kv snapshot: unknown flags " + std::to_string(flags));
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
    const uint64_t per_head = len * uint64_t(sizeof(int32_t) + 2 * hd * sizeof(float));
    if (len > r.remaining() || per_head * uint64_t(heads) > r.remaining())
      throw KvFormatError("kv snapshot truncated: layer " + std::to_string(l) + " length " + std::to_string(len) +
                          " exceeds the " + std::to_string(r.remaining()) + " bytes left");
    img.own = own == 1;
    img.length = int64_t(len);
    img.positions.assign(size_t(heads), std::vector<int32_t>(len));
    for (auto& p : img.positions) r.get_raw(p.data(), len * sizeof(int32_t), "positions");
    img.k.resize(size_t(heads) * len * size_t(hd));
    img.v.resize(img.k.size());
    r.get_raw(img.k.data(), img.k.size() * sizeof(float), "keys");
    r.get_raw(img.v.data(), img.v.size() * sizeof(float), "values");
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

  for (int64_t l = 0; l < cfg_.layers; ++l) {
    const LayerImage& img = layers[size_t(l)];
    const auto& blocks = t.blocks(l);
    LayerStorage& store = alloc_.storage(l);
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < img.length; ++i) {
        const int32_t b = blocks[size_t(i / bs)];
        const int64_t src = (h * img.length + i) * hd, dst = (h * bs + i % bs) * hd;
        std::memcpy(store.k(b) + dst, img.k.data() + src, size_t(hd) * sizeof(float));
        std::memcpy(store.v(b) + dst, img.v.data() + src, size_t(hd) * sizeof(float));
      }
  }
  index_full_blocks(t);
  return insert(std::move(t));
}

}  // namespace mnemo::engine::kv
