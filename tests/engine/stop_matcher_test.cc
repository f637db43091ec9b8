#include "engine/generation/stop_matcher.h"

#include <gtest/gtest.h>

namespace mnemo::engine {
namespace {

TEST(StopMatcher, HoldsBackPossibleStopPrefixes) {
  StopMatcher m({"END", "</s>"});
  EXPECT_EQ(m.push("hello E"), "hello ");
  EXPECT_EQ(m.push("N"), "");
  EXPECT_EQ(m.push("X more"), "ENX more");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push(" and </"), " and ");
  EXPECT_EQ(m.push("s> tail"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("after"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, StopSplitAcrossManyPiecesAndFlush) {
  StopMatcher m({"abc"});
  std::string out;
  for (char ch : std::string("xxabxab")) out += m.push(std::string(1, ch));
  EXPECT_EQ(out, "xxabx");
  EXPECT_EQ(m.flush(), "ab");
  StopMatcher n({"abc"});
  const std::string first = n.push("zzab");
  EXPECT_EQ(first + n.push("c!"), "zz");
  EXPECT_TRUE(n.stopped());
}

TEST(StopMatcher, NoStopsPassesEverything) {
  StopMatcher m({});
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.flush(), "");
}

}  // namespace
}  // namespace mnemo::engine
