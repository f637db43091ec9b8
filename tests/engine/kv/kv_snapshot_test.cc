// export_sequence / import_sequence round trips and header validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "engine/kv/kv_cache_manager.h"
#include "kv_test_util.h"

namespace mnemo::engine::kv {
namespace {

using testing::append_and_write;
using testing::iota_tokens;

void expect_same(const KvCacheManager& a, SeqId sa, const KvCacheManager& b, SeqId sb) {
  ASSERT_EQ(std::vector<int32_t>(a.tokens(sa).begin(), a.tokens(sa).end()),
            std::vector<int32_t>(b.tokens(sb).begin(), b.tokens(sb).end()));
  for (int64_t l = 0; l < a.config().layers; ++l)
    for (int64_t h = 0; h < a.config().kv_heads; ++h) {
      HeadCopy x = a.gather(sa, l, h), y = b.gather(sb, l, h);
      EXPECT_EQ(x.k, y.k);
      EXPECT_EQ(x.v, y.v);
      EXPECT_EQ(x.positions, y.positions);
    }
}

TEST(KvSnapshot, RoundTripIntoAnotherCacheRestoresContentAndPrefixIndex) {
  KvCacheManager src(testing::small_config(8)), dst(testing::small_config(5));
  auto tokens = iota_tokens(10);
  SeqId s = src.create(/*salt=*/3);
  ASSERT_TRUE(append_and_write(src, s, 3, tokens, 0, 10));
  std::vector<uint8_t> bytes = src.export_sequence(s);
  std::optional<SeqId> r = dst.import_sequence(bytes);
  ASSERT_TRUE(r.has_value());
  expect_same(src, s, dst, *r);
  EXPECT_EQ(dst.committed(*r), 10);
  dst.free(*r);
  PrefixMatch m = dst.match_prefix(tokens, 3);
  EXPECT_EQ(m.num_tokens, 8);
  dst.release(std::move(m));
  dst.check_invariants();
}

TEST(KvSnapshot, CompactedSequenceKeepsPerLayerTablesAndPositions) {
  KvCacheManager kv(testing::small_config(12));
  auto tokens = iota_tokens(9);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 9));
  ASSERT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0, 4, 8}, {2, 3, 7}}));
  std::optional<SeqId> r = kv.import_sequence(kv.export_sequence(s));
  ASSERT_TRUE(r.has_value());
  expect_same(kv, s, kv, *r);
  EXPECT_TRUE(kv.compacted(*r));
  EXPECT_EQ(kv.length(*r, 0), 3);
  EXPECT_EQ(kv.length(*r, 1), 9);
  kv.check_invariants();
}

TEST(KvSnapshot, NoRoomIsNotAnError) {
  KvCacheManager big(testing::small_config(8)), small(testing::small_config(2));
  SeqId s = big.create();
  ASSERT_TRUE(append_and_write(big, s, 0, iota_tokens(12), 0, 12));
  EXPECT_FALSE(small.import_sequence(big.export_sequence(s)).has_value());
  small.check_invariants();
}

TEST(KvSnapshot, MismatchedOrDamagedBuffersFailWithTheField) {
  KvCacheManager kv(testing::small_config(8));
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, iota_tokens(5), 0, 5));
  std::vector<uint8_t> good = kv.export_sequence(s);
  auto expect_error = [&](std::vector<uint8_t> bytes, const char* needle) {
    try {
      kv.import_sequence(bytes);
      ADD_FAILURE() << "accepted a bad snapshot, expected: " << needle;
    } catch (const KvFormatError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto bad_magic = good;
  bad_magic[0] = 'X';
  expect_error(bad_magic, "magic");
  auto bad_version = good;
  bad_version[8] = 9;
  expect_error(bad_version, "version");
  KvCacheManager other(testing::small_config(8, 2, 2, /*head_dim=*/8));
  SeqId o = other.create();
  ASSERT_TRUE(append_and_write(other, o, 0, iota_tokens(5), 0, 5));
  expect_error(other.export_sequence(o), "head_dim is 8, this cache has 4");
  expect_error(std::vector<uint8_t>(good.begin(), good.end() - 3), "truncated");
  auto trailing = good;
  trailing.push_back(0);
  expect_error(trailing, "trailing");
  expect_error({}, "truncated");
  kv.check_invariants();
  EXPECT_EQ(kv.num_sequences(), 1u);
}

// Layout offsets of a one-layer snapshot (see kv_snapshot.cc).
constexpr size_t kDtypeAt = 8 + 6 * 4;
constexpr size_t kHeaderBytes = kDtypeAt + 4 + 3 * 8;
size_t layer_offset(size_t num_tokens) { return kHeaderBytes + 4 * num_tokens; }

template <class T>
void poke(std::vector<uint8_t>& bytes, size_t at, T value) {
  std::memcpy(bytes.data() + at, &value, sizeof(T));
}

// A version 3 f32 snapshot as version 2 wrote it: no dtype field.
std::vector<uint8_t> as_version_2(std::vector<uint8_t> v3) {
  v3.erase(v3.begin() + ptrdiff_t(kDtypeAt), v3.begin() + ptrdiff_t(kDtypeAt + 4));
  poke<uint32_t>(v3, 8, 2);
  return v3;
}

TEST(KvSnapshot, UnevenCompactionKeepsHolesAndWritesThemAsZeros) {
  KvCacheManager kv(testing::small_config(12));
  auto tokens = iota_tokens(10);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 9));
  ASSERT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0, 2, 4, 8}, {5}}));
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 9, 1));
  const std::vector<uint8_t> bytes = kv.export_sequence(s);
  std::optional<SeqId> r = kv.import_sequence(bytes);
  ASSERT_TRUE(r.has_value());
  expect_same(kv, s, kv, *r);
  for (int64_t h = 0; h < 2; ++h) {
    EXPECT_EQ(kv.hole(*r, 0, h), kv.hole(s, 0, h));
    EXPECT_TRUE(std::ranges::equal(kv.positions(*r, 0, h), kv.positions(s, 0, h)));
  }
  EXPECT_EQ(kv.hole(*r, 0, 1), (Hole{1, 4}));
  // s's hole still holds the K,V of tokens 1..3, the copy's whatever the
  // import wrote: equal snapshots mean the hole went out as zeros.
  EXPECT_EQ(kv.export_sequence(*r), bytes);
  kv.check_invariants();
}

TEST(KvSnapshot, VersionOneSnapshotsAreStillRead) {
  KvCacheManager kv(testing::small_config(12, 1));
  auto tokens = iota_tokens(7);
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, tokens, 0, 7));
  // Uncompacted: version 1 had version 2's layout.
  std::vector<uint8_t> v1 = as_version_2(kv.export_sequence(s));
  poke<uint32_t>(v1, 8, 1);
  std::optional<SeqId> r = kv.import_sequence(v1);
  ASSERT_TRUE(r.has_value());
  expect_same(kv, s, kv, *r);
  // Compacted evenly: version 1 lacks the two hole fields per head.
  ASSERT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{1, 5}, {0, 6}}));
  const std::vector<uint8_t> v3 = kv.export_sequence(s);
  const std::vector<uint8_t> v2 = as_version_2(v3);
  v1 = v2;
  const size_t holes_at = layer_offset(7) - 4 /* no dtype field */ + 4 + 8;
  v1.erase(v1.begin() + ptrdiff_t(holes_at), v1.begin() + ptrdiff_t(holes_at + 2 * 2 * 8));
  poke<uint32_t>(v1, 8, 1);
  r = kv.import_sequence(v1);
  ASSERT_TRUE(r.has_value());
  expect_same(kv, s, kv, *r);
  EXPECT_TRUE(kv.compacted(*r));
  EXPECT_EQ(kv.export_sequence(*r), v3) << "read as version 1, written as version 3";
  r = kv.import_sequence(v2);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(kv.export_sequence(*r), v3) << "read as version 2, written as version 3";
  auto v4 = v3;
  poke<uint32_t>(v4, 8, 4);
  EXPECT_THROW(kv.import_sequence(v4), KvFormatError);
  kv.check_invariants();
}

TEST(KvSnapshot, Bf16RoundTripKeepsTheBitsAndRecordsTheType) {
  const KvConfig c = testing::small_config(12, 2, 2, /*head_dim=*/20, 4, KvDType::BF16);
  KvCacheManager src(c), dst(c);
  auto tokens = iota_tokens(11);
  SeqId s = src.create();
  ASSERT_TRUE(append_and_write(src, s, 0, tokens, 0, 11));
  ASSERT_TRUE(src.compact(s, 1, std::vector<std::vector<int32_t>>{{0, 3, 4, 9}, {2, 10}}));  // a hole in head 1
  const std::vector<uint8_t> bytes = src.export_sequence(s);
  uint32_t dtype = 9;
  std::memcpy(&dtype, bytes.data() + kDtypeAt, 4);
  EXPECT_EQ(dtype, uint32_t(KvDType::BF16));
  // Two bytes per element: layer 0 (11 slots) and layer 1 (4 slots), K and V, 2 heads of 20.
  const size_t tables = 2 * (4 + 8) + 2 * 2 * 8 + 2 * 4 * (11 + 4);
  EXPECT_EQ(bytes.size(), layer_offset(11) + tables + 2 * 2 * 20 * 2 * (11 + 4));
  std::optional<SeqId> r = dst.import_sequence(bytes);
  ASSERT_TRUE(r.has_value());
  expect_same(src, s, dst, *r);
  EXPECT_EQ(dst.export_sequence(*r), bytes);
  dst.check_invariants();
}

TEST(KvSnapshot, F32SnapshotsRoundIntoABf16CacheAndBf16OnesAreRefusedByF32) {
  const KvConfig f = testing::small_config(12, 2, 2, 20), b = testing::small_config(12, 2, 2, 20, 4, KvDType::BF16);
  KvCacheManager f32(f), bf16(b);
  auto tokens = iota_tokens(9);
  SeqId sf = f32.create(), sb = bf16.create();
  ASSERT_TRUE(append_and_write(f32, sf, 0, tokens, 0, 9));
  ASSERT_TRUE(append_and_write(bf16, sb, 0, tokens, 0, 9));
  // f32 (also as an older version 2 snapshot) -> bf16: what a bf16 cache computes.
  for (const auto& bytes : {f32.export_sequence(sf), as_version_2(f32.export_sequence(sf))}) {
    std::optional<SeqId> r = bf16.import_sequence(bytes);
    ASSERT_TRUE(r.has_value());
    expect_same(bf16, sb, bf16, *r);
    bf16.free(*r);
  }
  try {
    f32.import_sequence(bf16.export_sequence(sb));
    ADD_FAILURE() << "an f32 cache accepted a bf16 snapshot";
  } catch (const KvFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bf16"), std::string::npos) << e.what();
  }
  auto unknown = bf16.export_sequence(sb);
  poke<uint32_t>(unknown, kDtypeAt, 7);
  EXPECT_THROW(bf16.import_sequence(unknown), KvFormatError);
  f32.check_invariants();
  bf16.check_invariants();
}

TEST(KvSnapshot, DamagedHolesAreRefused) {
  KvCacheManager kv(testing::small_config(12, 1));
  SeqId s = kv.create();
  ASSERT_TRUE(append_and_write(kv, s, 0, iota_tokens(6), 0, 6));
  ASSERT_TRUE(kv.compact(s, 0, std::vector<std::vector<int32_t>>{{0, 2, 3}, {4}}));  // head 1: hole [1, 3)
  const std::vector<uint8_t> good = kv.export_sequence(s);
  const size_t holes_at = layer_offset(6) + 4 + 8, positions_at = holes_at + 4 * 8;
  auto expect_error = [&](const std::vector<uint8_t>& bytes, const char* needle) {
    try {
      kv.import_sequence(bytes);
      ADD_FAILURE() << "accepted a bad snapshot, expected: " << needle;
    } catch (const KvFormatError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto past_end = good;
  poke<uint64_t>(past_end, holes_at + 3 * 8, 4);
  expect_error(past_end, "hole past its length");
  auto position_in_hole = good;
  poke<int32_t>(position_in_hole, positions_at + (3 + 1) * 4, 5);
  expect_error(position_in_hole, "position in its hole");
  auto lost_position = good;
  poke<int32_t>(lost_position, positions_at + 1 * 4, -1);
  expect_error(lost_position, "slot 1 has position -1");
  auto all_holes = good;
  poke<uint64_t>(all_holes, holes_at, 2);
  poke<uint64_t>(all_holes, holes_at + 8, 3);
  expect_error(all_holes, "head 0 has a position in its hole");
  auto both = good;  // consistent positions, but no head fills the layer
  poke<uint64_t>(both, holes_at, 2);
  poke<uint64_t>(both, holes_at + 8, 3);
  poke<int32_t>(both, positions_at + 2 * 4, -1);
  expect_error(both, "every head has a hole");
  EXPECT_EQ(kv.num_sequences(), 1u);
  kv.check_invariants();
}

}  // namespace
}  // namespace mnemo::engine::kv
