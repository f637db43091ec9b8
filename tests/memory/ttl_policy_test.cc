#include "memory/ttl/ttl_policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace mnemo::memory::ttl {
namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(TtlPolicy, NoneAndFixedIgnoreTheModel) {
  TtlPolicy none(RetentionMode::parse("none"));
  EXPECT_DOUBLE_EQ(none.decide("search", 100).seconds, 0);
  TtlPolicy fixed(RetentionMode::parse("fixed:2.5"));
  fixed.queue_delay().add(50);
  auto d = fixed.decide("search", 100);
  EXPECT_DOUBLE_EQ(d.seconds, 2.5);
  EXPECT_TRUE(has(d.reason, "fixed 2.5 s")) << d.reason;
  EXPECT_EQ(fixed.mode().kind, RetentionMode::Kind::Fixed);
}

TEST(TtlPolicy, ColdStartLadder) {
  TtlPolicy p(RetentionMode::parse("continuum"));
  EXPECT_EQ(p.cold_start_samples(), 100u);
  // B = T + reload with T = 0 (no evicted requests yet).
  EXPECT_DOUBLE_EQ(p.decide("t", 0).seconds, 0);
  EXPECT_DOUBLE_EQ(p.decide("t", 0.5).seconds, 0);
  EXPECT_DOUBLE_EQ(p.decide("t", 1).seconds, 0);  // ln 1 = 0 and B > 1 is required
  EXPECT_NEAR(p.decide("t", std::exp(1.0)).seconds, 1, 1e-12);
  EXPECT_NEAR(p.decide("t", std::exp(2.0)).seconds, 2, 1e-12);
  EXPECT_DOUBLE_EQ(p.decide("t", -3).seconds, 0);  // a nonsense reload counts as 0
  // T adds to B: T = 1.2, reload = 2 -> B = 3.2.
  p.queue_delay().add(1.2);
  auto d = p.decide("t", 2);
  EXPECT_NEAR(d.seconds, std::log(3.2), 1e-12);
  EXPECT_TRUE(has(d.reason, "cold start ln(B), B=3.2 s")) << d.reason;
  EXPECT_TRUE(has(d.reason, "0 < 100 samples")) << d.reason;
}

TEST(TtlPolicy, SwitchesToGlobalThenPerToolCdf) {
  TtlPolicy p(RetentionMode::parse("continuum"), 4);
  for (int i = 0; i < 3; ++i) p.tools().record("a", 5);
  // 3 < K = 4: still ln(6).
  auto d = p.decide("b", 6);
  EXPECT_NEAR(d.seconds, std::log(6.0), 1e-12);
  EXPECT_TRUE(has(d.reason, "cold start")) << d.reason;

  p.tools().record("a", 5);
  // K samples: global CDF {5,5,5,5}, G = 6: tau 5 -> 6 - 5 = 1 > 0.
  d = p.decide("b", 6);
  EXPECT_DOUBLE_EQ(d.seconds, 5);
  EXPECT_TRUE(has(d.reason, "global CDF of 4 samples")) << d.reason;

  for (int i = 0; i < 4; ++i) p.tools().record("b", 1);
  // b has K samples, not more: still global {1,1,1,1,5,5,5,5}, G = 12:
  // tau 1 -> 6 - 1 = 5, tau 5 -> 12 - 5 = 7.
  d = p.decide("b", 12);
  EXPECT_DOUBLE_EQ(d.seconds, 5);
  EXPECT_TRUE(has(d.reason, "global CDF of 8 samples")) << d.reason;

  p.tools().record("b", 1);
  // b has 5 > K: its own CDF {1,1,1,1,1}, G = 12: tau 1 -> 11.
  d = p.decide("b", 12);
  EXPECT_DOUBLE_EQ(d.seconds, 1);
  EXPECT_TRUE(has(d.reason, "tool 'b' CDF of 5 samples")) << d.reason;
  // a still has only K samples: global {1 x5, 5 x4}, G = 12: tau 1 -> 5/9*12 - 1 = 5.67, tau 5 -> 7.
  EXPECT_DOUBLE_EQ(p.decide("a", 12).seconds, 5);
}

TEST(TtlPolicy, UsesTAndEta) {
  TtlPolicy p(RetentionMode::parse("continuum"), 4);
  for (double x : {1, 1, 1, 10}) p.tools().record("a", x);
  p.queue_delay().add(10);  // T = 10
  // No finished programs: eta = 0, G = reload = 30: tau 1 -> 21.5, tau 10 -> 20.
  EXPECT_DOUBLE_EQ(p.decide("a", 30).seconds, 1);
  // Fixed turn counts: eta = 1, G = 40: tau 10 -> 30 beats tau 1 -> 29.
  for (int i = 0; i < 5; ++i) p.eta().add_program(6);
  auto d = p.decide("a", 30);
  EXPECT_DOUBLE_EQ(d.seconds, 10);
  EXPECT_TRUE(has(d.reason, "T=10 s, eta=1, reload=30 s")) << d.reason;
}

TEST(TtlPolicy, JsonRoundTrip) {
  TtlPolicy p(RetentionMode::parse("continuum"), 4);
  for (double x : {1, 1, 1, 10, 2}) p.tools().record("a", x);
  p.eta().add_program(1);
  p.eta().add_program(3);
  TtlPolicy q(RetentionMode::parse("continuum"), 4);
  q.load(p.to_json());
  EXPECT_EQ(q.tools().total(), 5u);
  EXPECT_EQ(q.tools().samples("a"), p.tools().samples("a"));
  EXPECT_NEAR(q.eta().eta(), 5.0 / 11, 1e-12);
  EXPECT_DOUBLE_EQ(q.decide("a", 30).seconds, p.decide("a", 30).seconds);
  EXPECT_EQ(q.to_json(), p.to_json());
}

TEST(TtlPolicy, LoadRejectsJunkAndKeepsBothHalves) {
  TtlPolicy p(RetentionMode::parse("continuum"), 4);
  p.tools().record("a", 1);
  p.eta().add_program(3);
  const auto before = p.to_json();
  EXPECT_THROW(p.load(nlohmann::json::object()), std::invalid_argument);
  auto j = before;
  j["tools"]["global"] = {1, -1};  // bad tools, good eta
  EXPECT_THROW(p.load(j), std::invalid_argument);
  j = before;
  j["tools"]["global"] = {1, 2, 3};  // good tools, bad eta
  j["eta"]["sum_k"] = nullptr;
  EXPECT_THROW(p.load(j), std::invalid_argument);
  EXPECT_EQ(p.to_json(), before);
}

TEST(TtlPolicy, ConcurrentRecordAndDecide) {
  TtlPolicy p(RetentionMode::parse("continuum"), 50);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&p, w] {
      const std::string tool = "tool" + std::to_string(w % 2);
      for (int i = 0; i < 2000; ++i) {
        p.tools().record(tool, (i % 7) * 0.1);
        p.queue_delay().add(0.5);
        if (i % 10 == 0) p.eta().add_program(1 + i % 5);
        auto d = p.decide(tool, 2);
        ASSERT_GE(d.seconds, 0);
        if (i % 100 == 0) (void)p.to_json();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(p.tools().total(), 8000u);
  EXPECT_EQ(p.tools().count("tool0"), 1000u);  // the per-tool window
  EXPECT_EQ(p.eta().programs(), 800);
}

}  // namespace
}  // namespace mnemo::memory::ttl
