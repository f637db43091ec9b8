#include "plugins/plugin_loader.h"

#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

namespace mnemo::plugins {
namespace {

using namespace std::chrono_literals;

PluginConfig config_for(const std::string& path, Json config = Json::object()) {
  PluginConfig c;
  c.name = "text";
  c.path = path;
  c.config = std::move(config);
  return c;
}

CallLimits within(std::chrono::milliseconds t, size_t cap = 1 << 20) { return CallLimits{Clock::now() + t, cap}; }

// The plugins' log lines, as mnemod would write them.
std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_lines() {
  static auto sink = [] {
    auto s = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
    auto logger = std::make_shared<spdlog::logger>("tools", s);
    logger->set_level(spdlog::level::debug);
    spdlog::register_logger(logger);
    return s;
  }();
  return sink;
}

bool logged(const std::string& needle) {
  for (const auto& line : log_lines()->last_formatted())
    if (line.find(needle) != std::string::npos) return true;
  return false;
}

std::string start_error(const std::string& path) {
  PluginLibrary p(config_for(path));
  try {
    p.start();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

class ExamplePlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    log_lines();
    plugin.start();
  }
  ToolResult call(const std::string& tool, const Json& args, CallLimits limits = within(10s),
                  std::stop_token cancel = {}) {
    return plugin.call(tool, args, limits, cancel);
  }
  PluginLibrary plugin{config_for(MNEMO_EXAMPLE_PLUGIN, Json{{"greeting", "Ahoy"}})};
};

TEST_F(ExamplePlugin, ListsItsTools) {
  EXPECT_STREQ(plugin.kind(), "plugin");
  std::vector<std::string> names;
  for (const auto& t : plugin.tools()) {
    names.push_back(t.name);
    EXPECT_FALSE(t.description.empty());
    EXPECT_EQ(t.parameters["type"], "object");
  }
  EXPECT_EQ(names, (std::vector<std::string>{"word_count", "reverse", "greet", "sleep_ms"}));
}

TEST_F(ExamplePlugin, CallsEachTool) {
  auto r = call("word_count", Json{{"text", "  the quick\tbrown\nfox "}});
  EXPECT_FALSE(r.is_error) << r.output;
  EXPECT_EQ(Json::parse(r.output), Json({{"words", 4}}));

  r = call("reverse", Json{{"text", "abc h\xC3\xA9 \"q\" \xF0\x9F\x98\x80"}});
  EXPECT_FALSE(r.is_error) << r.output;
  EXPECT_EQ(r.output, "\xF0\x9F\x98\x80 \"q\" \xC3\xA9h cba");

  r = call("sleep_ms", Json{{"ms", 20}});
  EXPECT_FALSE(r.is_error) << r.output;
  EXPECT_EQ(Json::parse(r.output), Json({{"slept_ms", 20}}));
}

TEST_F(ExamplePlugin, ConfigReachesInit) {
  const auto r = call("greet", Json{{"name", "Ada"}});
  EXPECT_FALSE(r.is_error) << r.output;
  EXPECT_EQ(r.output, "Ahoy, Ada!");
  EXPECT_TRUE(logged("plugin 'text': text_tools ready, greeting \"Ahoy\""));
}

TEST_F(ExamplePlugin, BadArgumentsAreAnErrorResult) {
  auto r = call("word_count", Json{{"text", 5}});
  EXPECT_TRUE(r.is_error);
  EXPECT_EQ(r.failure, Failure::None);
  EXPECT_NE(r.output.find("bad arguments"), std::string::npos) << r.output;
  r = call("sleep_ms", Json{{"ms", Json{{"nested", 1}}}});
  EXPECT_TRUE(r.is_error);
  EXPECT_NE(r.output.find("nested"), std::string::npos) << r.output;
  r = call("no_such_tool", Json::object());
  EXPECT_EQ(r.failure, Failure::Unknown);
}

TEST_F(ExamplePlugin, OutputOverTheCapIsTooLarge) {
  const auto r = call("reverse", Json{{"text", std::string(5000, 'x')}}, within(10s, 1000));
  EXPECT_EQ(r.failure, Failure::TooLarge);
  EXPECT_TRUE(r.is_error);
}

TEST_F(ExamplePlugin, TimeoutReturnsPromptlyAndStopIsSafe) {
  const auto t0 = Clock::now();
  const auto r = call("sleep_ms", Json{{"ms", 5000}}, within(150ms));
  const auto took = Clock::now() - t0;
  EXPECT_EQ(r.failure, Failure::Timeout);
  EXPECT_TRUE(r.is_error);
  EXPECT_NE(r.output.find("timed out after"), std::string::npos) << r.output;
  EXPECT_GE(took, 140ms);
  EXPECT_LT(took, 400ms);
  plugin.stop();  // the plugin saw the cancel flag: its thread ends, then the library unloads
  EXPECT_EQ(plugin.calls_in_plugin(), 0);
  EXPECT_EQ(plugin.call("greet", Json{{"name", "x"}}, within(1s), {}).failure, Failure::Unavailable);
  EXPECT_TRUE(plugin.tools().empty());
}

TEST_F(ExamplePlugin, CancelEndsTheCall) {
  std::stop_source stop;
  const auto t0 = Clock::now();
  auto pending = std::async(std::launch::async, [&] { return call("sleep_ms", Json{{"ms", 5000}}, within(20s), stop.get_token()); });
  std::this_thread::sleep_for(100ms);
  stop.request_stop();
  const auto r = pending.get();
  EXPECT_EQ(r.failure, Failure::Cancelled);
  EXPECT_LT(Clock::now() - t0, 1s);
  // The plugin's thread ends soon after, having seen the flag.
  for (int i = 0; i < 100 && plugin.calls_in_plugin() > 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(plugin.calls_in_plugin(), 0);
}

TEST_F(ExamplePlugin, StopEndsWaitingCallsUnavailable) {
  auto pending = std::async(std::launch::async, [&] { return call("sleep_ms", Json{{"ms", 5000}}, within(20s)); });
  std::this_thread::sleep_for(100ms);
  plugin.stop();
  EXPECT_EQ(pending.get().failure, Failure::Unavailable);
}

TEST_F(ExamplePlugin, ConcurrentCalls) {
  std::vector<std::future<ToolResult>> calls;
  const auto t0 = Clock::now();
  for (int i = 0; i < 16; ++i)
    calls.push_back(std::async(std::launch::async, [&, i] {
      return i % 2 ? call("sleep_ms", Json{{"ms", 100}}) : call("greet", Json{{"name", "n" + std::to_string(i)}});
    }));
  for (int i = 0; i < 16; ++i) {
    const auto r = calls[size_t(i)].get();
    EXPECT_FALSE(r.is_error) << r.output;
    EXPECT_EQ(r.output, i % 2 ? "{\"slept_ms\":100}" : "Ahoy, n" + std::to_string(i) + "!");
  }
  EXPECT_LT(Clock::now() - t0, 700ms) << "calls of a thread-safe plugin ran one after another";
}

TEST(PluginLibrary, BadConfigFailsInitWithThePluginsMessage) {
  PluginLibrary p(config_for(MNEMO_EXAMPLE_PLUGIN, Json{{"greeting", 5}}));
  try {
    p.start();
    FAIL() << "start() accepted a bad config";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("plugin 'text'"), std::string::npos) << what;
    EXPECT_NE(what.find("init failed"), std::string::npos) << what;
    EXPECT_NE(what.find("greeting"), std::string::npos) << what;
  }
}

TEST(PluginLibrary, MissingFileIsAClearError) {
  const auto what = start_error("/nonexistent/libnothing.so");
  EXPECT_NE(what.find("plugin 'text' (/nonexistent/libnothing.so): no such file"), std::string::npos) << what;
}

TEST(PluginLibrary, LibraryWithoutEntryPointIsNotAPlugin) {
  const auto what = start_error(MNEMO_TEST_PLUGIN_NO_ENTRY);
  EXPECT_NE(what.find("not a mnemo plugin"), std::string::npos) << what;
  EXPECT_NE(what.find(MNEMO_TEST_PLUGIN_NO_ENTRY), std::string::npos) << what;
}

TEST(PluginLibrary, FileThatIsNoLibraryIsAClearError) {
  const auto what = start_error(MNEMO_SOURCE_DIR "/examples/plugin/README.md");
  EXPECT_NE(what.find("cannot load"), std::string::npos) << what;
}

TEST(PluginLibrary, AbiFromTheFutureIsRefused) {
  const auto what = start_error(MNEMO_TEST_PLUGIN_ABI99);
  EXPECT_NE(what.find("built for plugin ABI 99"), std::string::npos) << what;
  EXPECT_NE(what.find("newer than this mnemod supports (1..1)"), std::string::npos) << what;
}

TEST(PluginLibrary, ToolListThatIsNotJsonIsRefused) {
  const auto what = start_error(MNEMO_TEST_PLUGIN_BAD_LIST);
  EXPECT_NE(what.find("tool list is not valid JSON"), std::string::npos) << what;
}

TEST(PluginLibrary, CallIgnoringCancelKeepsTheLibraryLoadedUntilItReturns) {
  log_lines();
  PluginConfig config = config_for(MNEMO_TEST_PLUGIN_STUBBORN);
  config.name = "stubborn";
  auto p = std::make_unique<PluginLibrary>(config, 50ms);
  p->start();
  const auto t0 = Clock::now();
  const auto r = p->call("stubborn", Json::object(), within(100ms), {});
  EXPECT_EQ(r.failure, Failure::Timeout);
  EXPECT_LT(Clock::now() - t0, 400ms);
  EXPECT_EQ(p->calls_in_plugin(), 1);
  p->stop();  // waits 50 ms, then leaves the library to the thread still inside it
  EXPECT_FALSE(logged("plugin 'stubborn': odd plugin shut down"));
  EXPECT_EQ(p->calls_in_plugin(), 1);
  // The thread returns after 800 ms; only then is the plugin shut down and
  // unloaded (by that thread, before it counts itself out).
  for (int i = 0; i < 300 && p->calls_in_plugin() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(p->calls_in_plugin(), 0);
  const bool shut = logged("plugin 'stubborn': odd plugin shut down");
  p.reset();
  EXPECT_TRUE(shut);
}

}  // namespace
}  // namespace mnemo::plugins
