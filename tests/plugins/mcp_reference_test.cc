// McpServer against the MCP reference servers from npm, pinned in
// tests/plugins/mcp_servers (installed by the ctest fixture
// plugins.mcp_servers.npm_ci). Run with node directly: no network needed.
#include "plugins/mcp/mcp_server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>
#include <unistd.h>

namespace mnemo::plugins::mcp {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

fs::path package_main(const std::string& package) {
  return fs::path(MNEMO_MCP_SERVERS_DIR) / "node_modules" / "@modelcontextprotocol" / package / "dist" / "index.js";
}

McpServerOptions options() {
  McpServerOptions o;
  o.init_timeout = 20s;
  o.start_wait = 20s;
  o.backoff_initial = 100ms;
  return o;
}

CallLimits within(std::chrono::milliseconds d) { return CallLimits{Clock::now() + d, 1 << 20}; }

bool has_tool(const McpServer& s, const std::string& name) {
  auto tools = s.tools();
  return std::any_of(tools.begin(), tools.end(), [&](const ToolSpec& t) { return t.name == name; });
}

class McpReference : public ::testing::Test {
 protected:
  std::unique_ptr<McpServer> launch(const std::string& package, std::vector<std::string> args = {}) {
    const fs::path main = package_main(package);
    if (!fs::exists(main)) return nullptr;
    McpServerConfig c;
    c.name = package;
    c.argv = {MNEMO_NODE, main.string()};
    c.argv.insert(c.argv.end(), args.begin(), args.end());
    auto s = std::make_unique<McpServer>(c, options());
    s->start();
    return s;
  }
};

#define LAUNCH_OR_SKIP(var, ...)                                                                   \
  auto var = launch(__VA_ARGS__);                                                                  \
  if (!var) GTEST_SKIP() << "not installed: run `npm ci` in " MNEMO_MCP_SERVERS_DIR;               \
  ASSERT_TRUE(var->ready()) << var->last_error()

TEST_F(McpReference, EverythingEchoAndSum) {
  LAUNCH_OR_SKIP(s, "server-everything", {"stdio"});
  for (const char* tool : {"echo", "get-sum", "trigger-long-running-operation", "get-structured-content"})
    EXPECT_TRUE(has_tool(*s, tool)) << tool;
  auto echo = s->call("echo", Json{{"message", "hello mnemo"}}, within(10s), {});
  EXPECT_EQ(echo.failure, Failure::None) << echo.output;
  EXPECT_FALSE(echo.is_error);
  EXPECT_EQ(echo.output, "Echo: hello mnemo");

  auto sum = s->call("get-sum", Json{{"a", 2}, {"b", 40}}, within(10s), {});
  EXPECT_EQ(sum.failure, Failure::None) << sum.output;
  EXPECT_NE(sum.output.find("42"), std::string::npos) << sum.output;

  auto weather = s->call("get-structured-content", Json{{"location", "Chicago"}}, within(10s), {});
  EXPECT_EQ(weather.failure, Failure::None) << weather.output;
  EXPECT_NE(weather.output.find("temperature"), std::string::npos) << weather.output;

  // Bad arguments: the server's own error reaches the model as an error result.
  auto bad = s->call("get-sum", Json{{"a", "two"}}, within(10s), {});
  EXPECT_TRUE(bad.is_error) << bad.output;
  EXPECT_NE(bad.failure, Failure::Timeout);
}

TEST_F(McpReference, EverythingLongRunningOperationTimesOutAndTheServerStillAnswers) {
  LAUNCH_OR_SKIP(s, "server-everything", {"stdio"});
  const auto t0 = Clock::now();
  auto r = s->call("trigger-long-running-operation", Json{{"duration", 5}, {"steps", 5}}, within(500ms), {});
  EXPECT_EQ(r.failure, Failure::Timeout) << r.output;
  EXPECT_NE(r.output.find("timed out after"), std::string::npos) << r.output;
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_TRUE(s->ready());
  auto echo = s->call("echo", Json{{"message", "still here"}}, within(10s), {});
  EXPECT_EQ(echo.output, "Echo: still here");
  EXPECT_EQ(s->restarts(), 0);

  // A short one completes.
  auto quick = s->call("trigger-long-running-operation", Json{{"duration", 0.2}, {"steps", 2}}, within(10s), {});
  EXPECT_EQ(quick.failure, Failure::None) << quick.output;
  EXPECT_NE(quick.output.find("completed"), std::string::npos) << quick.output;
}

TEST_F(McpReference, EverythingConcurrentCalls) {
  LAUNCH_OR_SKIP(s, "server-everything", {"stdio"});
  std::vector<ToolResult> results(24);
  {
    std::vector<std::jthread> threads;
    for (size_t i = 0; i < results.size(); ++i)
      threads.emplace_back(
          [&, i] { results[i] = s->call("echo", Json{{"message", "m" + std::to_string(i)}}, within(10s), {}); });
  }
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i].output, "Echo: m" + std::to_string(i));
}

TEST_F(McpReference, FilesystemWriteReadList) {
  const fs::path dir = fs::temp_directory_path() / ("mnemo_mcp_fs_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path root = fs::canonical(dir);
  {
    LAUNCH_OR_SKIP(s, "server-filesystem", {root.string()});
    for (const char* tool : {"write_file", "read_text_file", "list_directory"}) EXPECT_TRUE(has_tool(*s, tool)) << tool;
    const std::string file = (root / "note.txt").string();
    auto w = s->call("write_file", Json{{"path", file}, {"content", "line one\nline two\n"}}, within(10s), {});
    EXPECT_EQ(w.failure, Failure::None) << w.output;
    EXPECT_FALSE(w.is_error) << w.output;

    auto r = s->call("read_text_file", Json{{"path", file}}, within(10s), {});
    EXPECT_EQ(r.failure, Failure::None) << r.output;
    EXPECT_EQ(r.output, "line one\nline two\n");

    auto l = s->call("list_directory", Json{{"path", root.string()}}, within(10s), {});
    EXPECT_EQ(l.failure, Failure::None) << l.output;
    EXPECT_NE(l.output.find("[FILE] note.txt"), std::string::npos) << l.output;

    // Outside the allowed directory: the server refuses, as an error result.
    auto out = s->call("read_text_file", Json{{"path", "/etc/hostname"}}, within(10s), {});
    EXPECT_TRUE(out.is_error) << out.output;
    EXPECT_EQ(out.failure, Failure::None) << out.output;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mnemo::plugins::mcp
