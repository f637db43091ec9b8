#include "plugins/command_provider.h"

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace mnemo::plugins {
namespace {

using namespace std::chrono_literals;

CommandConfig sh_tool(const std::string& name, const std::string& script) {
  CommandConfig c;
  c.name = name;
  c.description = "test tool";
  c.argv = {"/bin/sh", "-c", script};
  return c;
}

CallLimits within(std::chrono::milliseconds t, size_t cap = 1 << 20) { return CallLimits{Clock::now() + t, cap}; }

ToolResult run(CommandTool& tool, const Json& args, CallLimits limits = within(10s), std::stop_token cancel = {}) {
  return tool.call(tool.name(), args, limits, cancel);
}

TEST(CommandTool, DescribesOneTool) {
  CommandConfig c = sh_tool("echoer", "true");
  c.parameters = Json{{"type", "object"}, {"properties", {{"text", {{"type", "string"}}}}}};
  CommandTool t(c);
  EXPECT_STREQ(t.kind(), "command");
  const auto specs = t.tools();
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].name, "echoer");
  EXPECT_EQ(specs[0].description, "test tool");
  EXPECT_EQ(specs[0].parameters, c.parameters);
}

TEST(CommandTool, PlaceholdersAreSubstitutedWithoutAShell) {
  CommandConfig c;
  c.name = "printer";
  c.argv = {"printf", "%s|%s|%s|{{lit}}", "{text}", "n={count}", "{flags}"};
  CommandTool t(c);
  t.start();
  // The semicolon would start a second command if a shell were involved.
  const auto r = run(t, Json{{"text", "a b; echo pwned"}, {"count", 3}, {"flags", {1, true}}});
  EXPECT_FALSE(r.is_error) << r.output;
  EXPECT_EQ(r.output, "a b; echo pwned|n=3|[1,true]|{lit}");
}

TEST(CommandTool, MissingArgumentIsAnErrorNamingIt) {
  CommandConfig c;
  c.name = "printer";
  c.argv = {"echo", "{text}", "{other}"};
  CommandTool t(c);
  t.start();
  const auto r = run(t, Json{{"text", "x"}});
  EXPECT_TRUE(r.is_error);
  EXPECT_EQ(r.failure, Failure::None);
  EXPECT_NE(r.output.find("other"), std::string::npos) << r.output;
}

TEST(CommandTool, ExpandArgvBraces) {
  EXPECT_EQ(expand_argv({"a{{b}}c", "{x}{x}"}, Json{{"x", "y"}}), (std::vector<std::string>{"a{b}c", "yy"}));
  EXPECT_THROW(expand_argv({"{x"}, Json{{"x", 1}}), std::invalid_argument);
  EXPECT_THROW(expand_argv({"x}"}, Json::object()), std::invalid_argument);
}

TEST(CommandTool, MalformedTemplateFailsAtStart) {
  CommandConfig c;
  c.name = "bad";
  c.argv = {"echo", "{unclosed"};
  CommandTool t(c);
  EXPECT_THROW(t.start(), std::runtime_error);
}

TEST(CommandTool, ArgumentsArriveOnStdinAsOneJsonLine) {
  CommandTool t(sh_tool("cat", "cat"));
  t.start();
  const Json args{{"text", "hello"}, {"n", 2}};
  const auto r = run(t, args);
  ASSERT_FALSE(r.is_error) << r.output;
  ASSERT_FALSE(r.output.empty());
  EXPECT_EQ(r.output.back(), '\n');
  EXPECT_EQ(r.output.find('\n'), r.output.size() - 1);
  EXPECT_EQ(Json::parse(r.output), args);
}

TEST(CommandTool, NonZeroExitIsAnErrorWithStatusAndStderr) {
  CommandTool t(sh_tool("failing", "echo 'disk on fire' >&2; exit 3"));
  t.start();
  const auto r = run(t, Json::object());
  EXPECT_TRUE(r.is_error);
  EXPECT_EQ(r.failure, Failure::None);
  EXPECT_NE(r.output.find("exited with status 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("disk on fire"), std::string::npos) << r.output;
}

TEST(CommandTool, KilledBySignalIsAnError) {
  CommandTool t(sh_tool("suicidal", "kill -TERM $$"));
  t.start();
  const auto r = run(t, Json::object());
  EXPECT_TRUE(r.is_error);
  EXPECT_NE(r.output.find("killed by signal 15"), std::string::npos) << r.output;
}

TEST(CommandTool, TimeoutKillsTheProcessGroup) {
  const auto marker = std::filesystem::temp_directory_path() / ("mnemo_cmd_grandchild_" + std::to_string(getpid()));
  std::filesystem::remove(marker);
  CommandTool t(sh_tool("slow", "(sleep 1; touch " + marker.string() + ") & sleep 30"));
  t.start();
  const auto t0 = Clock::now();
  const auto r = run(t, Json::object(), within(300ms));
  EXPECT_EQ(r.failure, Failure::Timeout);
  EXPECT_TRUE(r.is_error);
  EXPECT_NE(r.output.find("timed out after"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("process group was killed"), std::string::npos) << r.output;
  EXPECT_LT(Clock::now() - t0, 3s);
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the grandchild survived the timeout";
}

TEST(CommandTool, OutputOverTheCapIsTooLarge) {
  CommandTool t(sh_tool("flood", "yes flood"));
  t.start();
  const auto r = run(t, Json::object(), within(10s, 5000));
  EXPECT_EQ(r.failure, Failure::TooLarge);
  EXPECT_TRUE(r.is_error);
  EXPECT_LT(r.output.size(), 5000u);
}

TEST(CommandTool, InvalidUtf8IsReplaced) {
  CommandTool t(sh_tool("binary", "printf 'ok \\377\\376 \\342\\202 end'"));
  t.start();
  const auto r = run(t, Json::object());
  ASSERT_FALSE(r.is_error) << r.output;
  EXPECT_EQ(r.output, "ok \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD end");
  EXPECT_NO_THROW((void)Json(r.output).dump());
  EXPECT_EQ(replace_invalid_utf8("h\xC3\xA9 \xF0\x9F\x98\x80"), "h\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(replace_invalid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");     // overlong
  EXPECT_EQ(replace_invalid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(CommandTool, OnlyAllowedEnvironmentIsVisible) {
  ASSERT_EQ(setenv("MNEMO_TEST_SECRET", "hunter2", 1), 0);
  CommandConfig c = sh_tool("env", "env");
  c.env_allow = {"PATH"};
  c.env = {{"TOOL_MODE", "strict"}};
  CommandTool t(c);
  t.start();
  const auto r = run(t, Json::object());
  unsetenv("MNEMO_TEST_SECRET");
  ASSERT_FALSE(r.is_error) << r.output;
  EXPECT_EQ(r.output.find("hunter2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("TOOL_MODE=strict"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PATH="), std::string::npos) << r.output;
}

TEST(CommandTool, RunsInTheConfiguredDirectory) {
  const auto dir = std::filesystem::canonical(std::filesystem::temp_directory_path());
  CommandConfig c;
  c.name = "where";
  c.argv = {"pwd"};
  c.cwd = dir.string();
  CommandTool t(c);
  t.start();
  const auto r = run(t, Json::object());
  ASSERT_FALSE(r.is_error) << r.output;
  EXPECT_EQ(r.output, dir.string() + "\n");
}

TEST(CommandTool, CancelKillsTheCall) {
  CommandTool t(sh_tool("slow", "sleep 30"));
  t.start();
  std::stop_source stop;
  const auto t0 = Clock::now();
  auto pending = std::async(std::launch::async, [&] { return run(t, Json::object(), within(20s), stop.get_token()); });
  std::this_thread::sleep_for(200ms);
  stop.request_stop();
  const auto r = pending.get();
  EXPECT_EQ(r.failure, Failure::Cancelled);
  EXPECT_LT(Clock::now() - t0, 3s);
}

TEST(CommandTool, ConcurrentCallsKeepTheirOwnArguments) {
  CommandConfig c;
  c.name = "echo";
  c.argv = {"/bin/sh", "-c", "sleep 0.1; printf %s \"$0\"", "{text}"};
  CommandTool t(c);
  t.start();
  std::vector<std::future<ToolResult>> calls;
  const auto t0 = Clock::now();
  for (int i = 0; i < 8; ++i)
    calls.push_back(std::async(std::launch::async, [&, i] { return run(t, Json{{"text", "call" + std::to_string(i)}}); }));
  for (int i = 0; i < 8; ++i) {
    const auto r = calls[size_t(i)].get();
    EXPECT_FALSE(r.is_error) << r.output;
    EXPECT_EQ(r.output, "call" + std::to_string(i));
  }
  EXPECT_LT(Clock::now() - t0, 2s) << "calls ran one after another";
}

TEST(CommandTool, MissingCommandFailsAtStart) {
  CommandConfig c;
  c.name = "ghost";
  c.argv = {"mnemo-no-such-command-xyz"};
  CommandTool t(c);
  try {
    t.start();
    FAIL() << "start() accepted a missing command";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("mnemo-no-such-command-xyz"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ghost"), std::string::npos) << e.what();
  }
  CommandConfig d;
  d.name = "dir";
  d.argv = {"/tmp"};
  EXPECT_THROW(CommandTool(d).start(), std::runtime_error);
}

TEST(CommandTool, SpawnFailureAtCallIsUnavailable) {
  CommandConfig c;
  c.name = "lost";
  c.argv = {"/bin/true"};
  c.cwd = "/nonexistent/mnemo/dir";
  CommandTool t(c);
  const auto r = run(t, Json::object());
  EXPECT_EQ(r.failure, Failure::Unavailable);
  EXPECT_TRUE(r.is_error);
}

}  // namespace
}  // namespace mnemo::plugins
