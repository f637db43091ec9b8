// export_sequence / import_sequence round trips and header validation.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mnemo::engine::kv
