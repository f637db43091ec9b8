#include "memory/ttl/retention_mode.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace mnemo::memory::ttl {
namespace {

using Kind = RetentionMode::Kind;

TEST(TtlRetentionMode, ParsesEachMode) {
  EXPECT_EQ(RetentionMode::parse("none").kind, Kind::None);
  EXPECT_EQ(RetentionMode::parse("continuum").kind, Kind::Continuum);
  auto f = RetentionMode::parse("fixed");
  EXPECT_EQ(f.kind, Kind::Fixed);
  EXPECT_DOUBLE_EQ(f.fixed_seconds, 2);
  EXPECT_DOUBLE_EQ(RetentionMode::parse("fixed:0.5").fixed_seconds, 0.5);
  EXPECT_DOUBLE_EQ(RetentionMode::parse("fixed:0").fixed_seconds, 0);
  EXPECT_DOUBLE_EQ(RetentionMode::parse("fixed:3600").fixed_seconds, 3600);
  EXPECT_EQ(RetentionMode{}.kind, Kind::Continuum);  // the default
}

TEST(TtlRetentionMode, RoundTrips) {
  for (const char* text : {"none", "continuum", "fixed", "fixed:2", "fixed:0.1", "fixed:1234.5678"}) {
    auto m = RetentionMode::parse(text);
    EXPECT_EQ(RetentionMode::parse(m.to_string()), m) << text << " -> " << m.to_string();
  }
  EXPECT_EQ(RetentionMode::parse("fixed").to_string(), "fixed:2");
  EXPECT_EQ(RetentionMode::parse("none").to_string(), "none");
  EXPECT_EQ(RetentionMode::parse("continuum").to_string(), "continuum");
}

TEST(TtlRetentionMode, RejectsJunkWithTheText) {
  for (const char* text : {"", "lru", "Fixed", " none", "none ", "fixed:", "fixed:abc", "fixed:1x", "fixed:-1",
                           "fixed:3600.5", "fixed:nan", "fixed:inf", "fixed:+1", "fixed 2"}) {
    try {
      RetentionMode::parse(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const std::invalid_argument& e) {
      std::string what = e.what();
      EXPECT_NE(what.find("'" + std::string(text) + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("continuum"), std::string::npos) << what;  // says what is accepted
    }
  }
}

}  // namespace
}  // namespace mnemo::memory::ttl
