#include "plugins/tool_registry.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

namespace mnemo::plugins {
namespace {

using namespace std::chrono_literals;

// A provider whose tools echo or sleep, counting what runs.
class FakeProvider : public Provider {
 public:
  FakeProvider(std::string name, std::vector<std::string> tools) : name_(std::move(name)), tools_(std::move(tools)) {}
  const std::string& name() const override { return name_; }
  const char* kind() const override { return "command"; }
  void start() override {
    if (fail_start) throw std::runtime_error("no such program");
  }
  std::vector<ToolSpec> tools() const override {
    std::vector<ToolSpec> out;
    for (const auto& t : tools_) out.push_back(ToolSpec{t, "the " + t + " tool"});
    return out;
  }
  ToolResult call(const std::string& tool, const Json& args, const CallLimits& limits, std::stop_token cancel) override {
    const int now = ++running;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    ++calls;
    ToolResult r{name_ + "/" + tool + ":" + args.dump()};
    if (args.contains("sleep_ms")) {
      const auto until = Clock::now() + std::chrono::milliseconds(args["sleep_ms"].get<int>());
      while (Clock::now() < until) {
        if (cancel.stop_requested()) { r = failed(Failure::Cancelled, "cancelled"); break; }
        if (Clock::now() >= limits.deadline) { r = failed(Failure::Timeout, "timeout"); break; }
        std::this_thread::sleep_for(2ms);
      }
    }
    // A provider that overruns its deadline (a stuck in-process plugin).
    if (args.contains("stubborn_ms")) std::this_thread::sleep_for(std::chrono::milliseconds(args["stubborn_ms"].get<int>()));
    if (args.contains("bytes")) r.output = std::string(args["bytes"].get<size_t>(), 'z');
    --running;
    return r;
  }
  void stop() override { ++stops; }

  bool fail_start = false;
  std::atomic<int> running{0}, peak{0}, calls{0}, stops{0};

 private:
  std::string name_;
  std::vector<std::string> tools_;
};

TEST(ToolRegistry, CollidingNamesAreNamespacedByProvider) {
  ToolRegistry reg;
  reg.add(std::make_unique<FakeProvider>("a", std::vector<std::string>{"echo", "only_a"}));
  reg.add(std::make_unique<FakeProvider>("b", std::vector<std::string>{"echo", "dotted.name"}));
  std::vector<std::string> names;
  for (const auto& e : reg.tools()) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a__echo", "only_a", "b__echo", "dotted_name"}));
  EXPECT_EQ(reg.call("b__echo", Json::object()).output, "b/echo:{}");
  EXPECT_EQ(reg.call("dotted_name", Json{{"x", 1}}).output, "b/dotted.name:{\"x\":1}");
}

TEST(ToolRegistry, UnknownNamesAndBadArgumentsRunNothing) {
  auto owned = std::make_unique<FakeProvider>("a", std::vector<std::string>{"echo"});
  FakeProvider& p = *owned;
  ToolRegistry reg;
  reg.add(std::move(owned));
  const auto r = reg.call("rm_rf", Json::object());
  EXPECT_TRUE(r.is_error);
  EXPECT_EQ(r.failure, Failure::Unknown);
  EXPECT_EQ(reg.call("echo", Json::array()).failure, Failure::InvalidOutput);
  EXPECT_EQ(p.calls.load(), 0);
}

TEST(ToolRegistry, LimitsComeFromToolThenProviderThenDefaults) {
  ToolLimits defaults;
  defaults.timeout = 5000ms;
  ToolRegistry reg(defaults);
  ProviderLimits pl;
  pl.all.max_output_bytes = 100;
  pl.by_tool["slow"].timeout = 50ms;
  reg.add(std::make_unique<FakeProvider>("a", std::vector<std::string>{"slow", "fast"}), pl);
  const auto slow = reg.find("slow"), fast = reg.find("fast");
  ASSERT_TRUE(slow && fast);
  EXPECT_EQ(slow->limits.timeout, 50ms);
  EXPECT_EQ(fast->limits.timeout, 5000ms);
  EXPECT_EQ(fast->limits.max_output_bytes, 100u);
  EXPECT_EQ(reg.call("slow", Json{{"sleep_ms", 2000}}).failure, Failure::Timeout);
  const auto big = reg.call("fast", Json{{"bytes", 101}});
  EXPECT_EQ(big.failure, Failure::TooLarge);
  EXPECT_EQ(reg.call("fast", Json{{"bytes", 100}}).output.size(), 100u);
}

TEST(ToolRegistry, ConcurrencyIsBoundedPerTool) {
  auto owned = std::make_unique<FakeProvider>("a", std::vector<std::string>{"t"});
  FakeProvider& p = *owned;
  ProviderLimits pl;
  pl.all.concurrency = 2;
  ToolRegistry reg;
  reg.add(std::move(owned), pl);
  std::vector<std::jthread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&] {
      if (!reg.call("t", Json{{"sleep_ms", 60}}).is_error) ++ok;
    });
  threads.clear();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(p.peak.load(), 2);
}

TEST(ToolRegistry, AFullToolIsBusyAtItsDeadline) {
  ProviderLimits pl;
  pl.all.concurrency = 1;
  pl.all.timeout = 100ms;
  ToolRegistry reg;
  reg.add(std::make_unique<FakeProvider>("a", std::vector<std::string>{"t"}), pl);
  std::jthread hog([&] { reg.call("t", Json{{"stubborn_ms", 400}}); });
  std::this_thread::sleep_for(20ms);
  // Waiting for the slot spends this call's own deadline.
  const auto t0 = Clock::now();
  const auto r = reg.call("t", Json{{"sleep_ms", 1}});
  EXPECT_EQ(r.failure, Failure::Busy) << r.output;
  EXPECT_LT(Clock::now() - t0, 300ms);
}

TEST(ToolRegistry, CancelEndsACall) {
  ToolRegistry reg;
  reg.add(std::make_unique<FakeProvider>("a", std::vector<std::string>{"t"}));
  std::stop_source stop;
  std::jthread canceller([&] {
    std::this_thread::sleep_for(30ms);
    stop.request_stop();
  });
  EXPECT_EQ(reg.call("t", Json{{"sleep_ms", 5000}}, stop.get_token()).failure, Failure::Cancelled);
}

TEST(ToolRegistry, StartNamesTheProviderThatFailedAndStopIsOnce) {
  auto owned = std::make_unique<FakeProvider>("wc", std::vector<std::string>{"t"});
  FakeProvider& p = *owned;
  p.fail_start = true;
  ToolRegistry reg;
  reg.add(std::move(owned));
  try {
    reg.start();
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "command 'wc': no such program");
  }
  reg.stop();
  reg.stop();
  EXPECT_EQ(p.stops.load(), 1);
  EXPECT_EQ(reg.call("t", Json::object()).failure, Failure::Unavailable);
}

}  // namespace
}  // namespace mnemo::plugins
