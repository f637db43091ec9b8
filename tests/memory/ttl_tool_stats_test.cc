#include "memory/ttl/tool_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace mnemo::memory::ttl {
namespace {

using V = std::vector<double>;

TEST(TtlToolStats, SamplesAreSortedPerToolAndGlobal) {
  ToolStats s;
  s.record("search", 5);
  s.record("search", 1);
  s.record("shell", 3);
  s.record("search", 3);
  EXPECT_EQ(s.samples("search"), (V{1, 3, 5}));
  EXPECT_EQ(s.samples("shell"), (V{3}));
  EXPECT_EQ(s.global_samples(), (V{1, 3, 3, 5}));
  EXPECT_EQ(s.count("search"), 3u);
  EXPECT_EQ(s.count("unknown"), 0u);
  EXPECT_TRUE(s.samples("unknown").empty());
  EXPECT_EQ(s.total(), 4u);
}

TEST(TtlToolStats, IgnoresNegativeAndNonFinite) {
  ToolStats s;
  s.record("a", -1);
  s.record("a", NAN);
  s.record("a", INFINITY);
  EXPECT_EQ(s.total(), 0u);
  EXPECT_EQ(s.tools(), 0u);
  s.record("a", 0);  // a tool that returns at once is a real sample
  EXPECT_EQ(s.total(), 1u);
}

TEST(TtlToolStats, WindowsDropTheOldest) {
  ToolStats s(3, 5);
  for (double x : {4, 3, 2, 1}) s.record("a", x);  // 4 falls out of a's window
  EXPECT_EQ(s.samples("a"), (V{1, 2, 3}));
  s.record("b", 10);
  s.record("b", 11);  // global had 4,3,2,1,10,11: 4 falls out
  EXPECT_EQ(s.total(), 5u);
  EXPECT_EQ(s.global_samples(), (V{1, 2, 3, 10, 11}));
  // Duplicates leave one copy at a time.
  ToolStats d(2, 2);
  d.record("a", 1);
  d.record("a", 1);
  d.record("a", 2);
  EXPECT_EQ(d.samples("a"), (V{1, 2}));
}

TEST(TtlToolStats, ForgetsTheStalestToolPastTheLimit) {
  ToolStats s(10, 100, 2);
  s.record("a", 1);
  s.record("b", 2);
  s.record("a", 3);  // b is now the least recently recorded
  s.record("c", 4);
  EXPECT_EQ(s.tools(), 2u);
  EXPECT_EQ(s.count("b"), 0u);
  EXPECT_EQ(s.samples("a"), (V{1, 3}));
  EXPECT_EQ(s.samples("c"), (V{4}));
  EXPECT_EQ(s.total(), 4u);  // the global window still holds b's sample
}

TEST(TtlToolStats, JsonRoundTripKeepsOrderForEviction) {
  ToolStats s(3, 4);
  for (double x : {5, 1, 4}) s.record("a", x);
  s.record("b", 2);
  ToolStats t(3, 4);
  t.load(s.to_json());
  EXPECT_EQ(t.samples("a"), (V{1, 4, 5}));
  EXPECT_EQ(t.samples("b"), (V{2}));
  EXPECT_EQ(t.global_samples(), (V{1, 2, 4, 5}));
  EXPECT_EQ(t.to_json(), s.to_json());
  // The oldest sample (5) is evicted first, as it would have been.
  t.record("a", 9);
  EXPECT_EQ(t.samples("a"), (V{1, 4, 9}));
  EXPECT_EQ(t.global_samples(), (V{1, 2, 4, 9}));
}

TEST(TtlToolStats, LoadIntoSmallerWindowsKeepsTheNewest) {
  ToolStats s(10, 10);
  for (double x : {1, 2, 3, 4}) s.record("a", x);
  ToolStats t(2, 3);
  t.load(s.to_json());
  EXPECT_EQ(t.samples("a"), (V{3, 4}));
  EXPECT_EQ(t.global_samples(), (V{2, 3, 4}));
}

TEST(TtlToolStats, LoadRejectsJunkAndKeepsState) {
  ToolStats s;
  s.record("a", 1);
  const auto before = s.to_json();
  auto good = before;
  std::vector<nlohmann::json> bad = {nlohmann::json(1), nlohmann::json::array(), nlohmann::json::object()};
  auto j = good;
  j.erase("tools");
  bad.push_back(j);
  j = good;
  j["global"] = "1,2";
  bad.push_back(j);
  j = good;
  j["global"] = {1, "x"};
  bad.push_back(j);
  j = good;
  j["global"] = {1, -2};
  bad.push_back(j);
  j = good;
  j["tools"] = {1, 2};
  bad.push_back(j);
  j = good;
  j["tools"]["b"] = 3;
  bad.push_back(j);
  for (const auto& b : bad) EXPECT_THROW(s.load(b), std::invalid_argument) << b.dump();
  EXPECT_EQ(s.to_json(), before);
  try {
    j = good;
    j["tools"]["b"] = {1, nullptr};
    s.load(j);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("tools.b"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mnemo::memory::ttl
