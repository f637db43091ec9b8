// McpServer against tests/plugins/fake_mcp_server.py, whose mode picks the
// misbehaviour; the fake records what it received in its state directory.
#include "plugins/mcp/mcp_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace mnemo::plugins::mcp {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class McpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mnemo_mcp_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    server_.reset();  // stops it before its state directory goes
    fs::remove_all(dir_);
  }

  McpServer& make(const std::string& mode, McpServerOptions o = fast()) {
    McpServerConfig c;
    c.name = "fake";
    c.argv = {"/usr/bin/python3", MNEMO_FAKE_MCP_SERVER, mode, dir_.string()};
    server_ = std::make_unique<McpServer>(c, o);
    return *server_;
  }
  McpServer& started(const std::string& mode, McpServerOptions o = fast()) {
    auto& s = make(mode, o);
    s.start();
    EXPECT_TRUE(s.ready()) << s.last_error();
    return s;
  }
  static McpServerOptions fast() {
    McpServerOptions o;
    o.init_timeout = 5s;
    o.start_wait = 5s;
    o.backoff_initial = 50ms;
    o.backoff_max = 200ms;
    o.max_line_bytes = 256 * 1024;
    return o;
  }
  static CallLimits within(std::chrono::milliseconds d, size_t max_bytes = 1 << 20) {
    return CallLimits{Clock::now() + d, max_bytes};
  }
  ToolResult echo(const std::string& text, std::chrono::milliseconds d = 5s) {
    return server_->call("echo", Json{{"text", text}}, within(d), {});
  }
  // The messages the fake received, in order.
  std::vector<Json> received() const {
    std::vector<Json> out;
    std::ifstream in(dir_ / "received.jsonl");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(Json::parse(line)["msg"]);
    return out;
  }
  std::vector<Json> received(const std::string& method) const {
    std::vector<Json> out;
    for (auto& m : received())
      if (m.value("method", std::string()) == method) out.push_back(m);
    return out;
  }
  template <class F>
  static bool eventually(F f, Clock::duration within = 3s) {
    const auto until = Clock::now() + within;
    while (Clock::now() < until) {
      if (f()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return f();
  }

  fs::path dir_;
  std::unique_ptr<McpServer> server_;
};

std::vector<std::string> names(const std::vector<ToolSpec>& tools) {
  std::vector<std::string> out;
  for (auto& t : tools) out.push_back(t.name);
  return out;
}

TEST_F(McpServerTest, HandshakeListsToolsAndCallsThem) {
  auto& s = started("normal");
  EXPECT_STREQ(s.kind(), "mcp");
  EXPECT_EQ(s.name(), "fake");
  EXPECT_EQ(names(s.tools()), (std::vector<std::string>{"echo", "sleep", "fail", "big", "structured", "image"}));
  EXPECT_EQ(s.tools()[0].description, "the echo tool");
  EXPECT_EQ(s.tools()[0].parameters["properties"]["text"]["type"], "string");

  auto r = echo("hello\nworld");
  EXPECT_EQ(r.failure, Failure::None);
  EXPECT_FALSE(r.is_error);
  EXPECT_EQ(r.output, "hello\nworld");

  auto init = received("initialize");
  ASSERT_EQ(init.size(), 1u);
  EXPECT_EQ(init[0]["params"]["protocolVersion"], "2025-06-18");
  EXPECT_EQ(init[0]["params"]["clientInfo"]["name"], "mnemod");
  EXPECT_EQ(init[0]["params"]["capabilities"], Json::object());
  EXPECT_EQ(received("notifications/initialized").size(), 1u);
  EXPECT_EQ(s.restarts(), 0);
}

TEST_F(McpServerTest, AnswersPingAndDeclinesOtherServerRequests) {
  started("normal");
  auto answer_to = [&](const std::string& id) -> std::optional<Json> {
    for (auto& m : received())
      if (m.contains("id") && m["id"] == id && !m.contains("method")) return m;
    return std::nullopt;
  };
  ASSERT_TRUE(eventually([&] { return answer_to("srv-ping") && answer_to("srv-roots"); }));
  EXPECT_EQ((*answer_to("srv-ping"))["result"], Json::object());
  EXPECT_EQ((*answer_to("srv-roots"))["error"]["code"], -32601);
}

TEST_F(McpServerTest, ResultShapes) {
  auto& s = started("normal");
  auto f = s.call("fail", Json::object(), within(5s), {});
  EXPECT_EQ(f.failure, Failure::None);
  EXPECT_TRUE(f.is_error);
  EXPECT_EQ(f.output, "it went wrong");

  auto st = s.call("structured", Json::object(), within(5s), {});
  EXPECT_EQ(st.failure, Failure::None);
  EXPECT_EQ(Json::parse(st.output)["temperature"], 21.5);

  auto img = s.call("image", Json::object(), within(5s), {});
  EXPECT_EQ(img.output, "a picture:\n[image image/png]");

  auto big = s.call("big", Json{{"bytes", 5000}}, within(5s, 4096), {});
  EXPECT_EQ(big.failure, Failure::TooLarge);
  EXPECT_TRUE(big.is_error);
  EXPECT_NE(big.output.find("4096"), std::string::npos) << big.output;
  EXPECT_EQ(s.call("big", Json{{"bytes", 4096}}, within(5s, 4096), {}).failure, Failure::None);

  auto unknown = s.call("nope", Json::object(), within(5s), {});
  EXPECT_EQ(unknown.failure, Failure::Unknown);
  EXPECT_TRUE(unknown.is_error);
}

TEST_F(McpServerTest, MalformedLineFailsTheCallAndRestartsTheServer) {
  auto& s = started("malformed");
  auto r = echo("x");
  EXPECT_EQ(r.failure, Failure::InvalidOutput);
  EXPECT_TRUE(r.is_error);
  EXPECT_NE(r.output.find("not JSON"), std::string::npos) << r.output;
  ASSERT_TRUE(eventually([&] { return s.restarts() == 1 && s.ready(); })) << s.last_error();
  EXPECT_NE(s.last_error().find("broke the protocol"), std::string::npos) << s.last_error();
  auto again = echo("after restart");
  EXPECT_EQ(again.failure, Failure::None) << again.output;
  EXPECT_EQ(again.output, "after restart");
}

TEST_F(McpServerTest, SilentServerTimesOutAndIsToldToCancel) {
  auto& s = started("silent");
  const auto t0 = Clock::now();
  auto r = echo("x", 300ms);
  const auto took = Clock::now() - t0;
  EXPECT_EQ(r.failure, Failure::Timeout);
  EXPECT_TRUE(r.is_error);
  EXPECT_NE(r.output.find("timed out after"), std::string::npos) << r.output;
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 2s);
  ASSERT_TRUE(eventually([&] { return !received("notifications/cancelled").empty(); }));
  auto cancel = received("notifications/cancelled")[0]["params"];
  auto calls = received("tools/call");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(cancel["requestId"], calls[0]["id"]);
  EXPECT_EQ(cancel["reason"], "timeout");
  EXPECT_TRUE(s.ready());  // a timeout is the tool's business, not a reason to restart
  EXPECT_EQ(s.restarts(), 0);
}

TEST_F(McpServerTest, CallerCancelEndsTheCallCancelled) {
  auto& s = started("silent");
  std::stop_source stop;
  std::jthread canceller([&] {
    std::this_thread::sleep_for(100ms);
    stop.request_stop();
  });
  const auto t0 = Clock::now();
  auto r = s.call("echo", Json{{"text", "x"}}, within(10s), stop.get_token());
  EXPECT_EQ(r.failure, Failure::Cancelled);
  EXPECT_LT(Clock::now() - t0, 2s);
  ASSERT_TRUE(eventually([&] { return !received("notifications/cancelled").empty(); }));
  EXPECT_EQ(received("notifications/cancelled")[0]["params"]["reason"], "cancelled");
}

TEST_F(McpServerTest, ExitMidCallIsCrashedAndTheServerComesBack) {
  auto& s = started("exit-mid-call");
  auto r = echo("x");
  EXPECT_EQ(r.failure, Failure::Crashed);
  EXPECT_NE(r.output.find("exited with status 3"), std::string::npos) << r.output;
  ASSERT_TRUE(eventually([&] { return s.restarts() == 1 && s.ready(); })) << s.last_error();
  EXPECT_EQ(echo("back").output, "back");
}

TEST_F(McpServerTest, FollowsToolsListPagination) {
  auto& s = started("paginate");
  EXPECT_EQ(names(s.tools()), (std::vector<std::string>{"t0", "t1", "t2", "t3", "t4"}));
  auto lists = received("tools/list");
  ASSERT_EQ(lists.size(), 3u);
  EXPECT_FALSE(lists[0].contains("params"));
  EXPECT_EQ(lists[1]["params"]["cursor"], "2");
  EXPECT_EQ(lists[2]["params"]["cursor"], "4");
}

TEST_F(McpServerTest, BoundsPagination) {
  auto o = fast();
  o.max_list_pages = 2;
  auto& s = started("paginate", o);
  EXPECT_EQ(names(s.tools()), (std::vector<std::string>{"t0", "t1", "t2", "t3"}));
}

TEST_F(McpServerTest, RefetchesToolsWhenTheListChanges) {
  auto& s = started("list-changed");
  EXPECT_EQ(names(s.tools()), (std::vector<std::string>{"echo", "grow"}));
  EXPECT_EQ(s.call("grow", Json::object(), within(5s), {}).output, "grown");
  ASSERT_TRUE(eventually([&] { return s.tools().size() == 4; }));
  EXPECT_EQ(names(s.tools()), (std::vector<std::string>{"echo", "grow", "added1", "added2"}));
  EXPECT_EQ(s.call("added2", Json::object(), within(5s), {}).output, "called added2");
}

TEST_F(McpServerTest, OversizedLineIsAProtocolError) {
  auto& s = started("flood");
  auto r = echo("x");
  EXPECT_EQ(r.failure, Failure::InvalidOutput);
  EXPECT_NE(r.output.find("over 262144 bytes"), std::string::npos) << r.output;
  ASSERT_TRUE(eventually([&] { return s.restarts() == 1 && s.ready(); })) << s.last_error();
  EXPECT_EQ(echo("fine").output, "fine");
}

TEST_F(McpServerTest, StopEndsPendingCallsUnavailable) {
  auto& s = started("silent");
  ToolResult r;
  std::jthread caller([&] { r = echo("x", 20s); });
  ASSERT_TRUE(eventually([&] { return !received("tools/call").empty(); }));
  const auto t0 = Clock::now();
  s.stop();
  caller.join();
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_EQ(r.failure, Failure::Unavailable);
  EXPECT_EQ(s.state(), McpServer::State::Stopped);
  s.stop();  // idempotent
  EXPECT_EQ(echo("x").failure, Failure::Unavailable);
}

TEST_F(McpServerTest, ManyConcurrentCalls) {
  auto& s = started("normal");
  std::atomic<int> good{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 16; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 10; ++i) {
          const std::string text = "t" + std::to_string(t) + "-" + std::to_string(i);
          auto r = i % 3 == 0 ? s.call("sleep", Json{{"ms", 20}}, within(10s), {}) : echo(text, 10s);
          if (r.failure == Failure::None && r.output == (i % 3 == 0 ? "slept 20 ms" : text)) ++good;
        }
      });
  }
  EXPECT_EQ(good.load(), 160);
}

TEST_F(McpServerTest, ServerThatNeverInitializesDoesNotBlockStart) {
  auto o = fast();
  o.init_timeout = 300ms;
  o.start_wait = 500ms;
  auto& s = make("no-init", o);
  const auto t0 = Clock::now();
  s.start();  // must not throw
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_FALSE(s.ready());
  EXPECT_TRUE(s.tools().empty());
  auto r = echo("x");
  EXPECT_EQ(r.failure, Failure::Unavailable);
  EXPECT_NE(r.output.find("start"), std::string::npos) << r.output;
  ASSERT_TRUE(eventually([&] { return s.restarts() >= 1; }));
  EXPECT_NE(s.last_error().find("initialize"), std::string::npos) << s.last_error();
}

// A command that is not there is the tools file's mistake: mnemod refuses
// to start naming it, rather than retrying a server that cannot exist.
TEST_F(McpServerTest, MissingCommandIsAStartError) {
  McpServerConfig c;
  c.name = "ghost";
  c.argv = {"/nonexistent/mcp-server"};
  McpServer s(c, fast());
  EXPECT_EQ(s.call("x", Json::object(), within(1s), {}).failure, Failure::Unavailable);  // before start
  try {
    s.start();
    FAIL() << "started a missing command";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/mcp-server"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(s.ready());
  s.stop();
}

TEST_F(McpServerTest, DestructorStopsARunningServer) {
  auto& s = started("normal");
  EXPECT_EQ(echo("x").output, "x");
  const auto t0 = Clock::now();
  server_.reset();
  EXPECT_LT(Clock::now() - t0, 2s);
  (void)s;
}

}  // namespace
}  // namespace mnemo::plugins::mcp
