#include "plugins/child_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

namespace mnemo::plugins {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

SpawnSpec sh(const std::string& script) {
  return SpawnSpec{{"/bin/sh", "-c", script}, child_environment({"PATH"}, {}), ""};
}

TEST(ChildProcess, InputGoesInOutputComesBack) {
  auto c = ChildProcess::spawn(SpawnSpec{{"cat"}, child_environment({"PATH"}, {}), ""});
  const std::string big(300000, 'x');  // larger than a pipe buffer both ways
  const auto r = run_to_end(c, big, Clock::now() + 10s, 1 << 20, 4096, {});
  ASSERT_TRUE(r.status.has_value());
  EXPECT_TRUE(WIFEXITED(*r.status) && WEXITSTATUS(*r.status) == 0);
  EXPECT_EQ(r.out, big);
}

TEST(ChildProcess, ExitStatusAndStderrAreKept) {
  auto c = ChildProcess::spawn(sh("echo oops >&2; exit 3"));
  const auto r = run_to_end(c, "", Clock::now() + 10s, 1024, 4096, {});
  ASSERT_TRUE(r.status.has_value());
  EXPECT_EQ(describe_status(*r.status), "exited with status 3");
  EXPECT_EQ(r.err, "oops\n");
}

TEST(ChildProcess, TimeoutKillsTheWholeGroup) {
  const auto marker = std::filesystem::temp_directory_path() / ("mnemo_grandchild_" + std::to_string(getpid()));
  std::filesystem::remove(marker);
  // The grandchild would write the marker after 1 s unless it dies with the group.
  auto c = ChildProcess::spawn(sh("(sleep 1; touch " + marker.string() + ") & sleep 30"));
  const auto t0 = Clock::now();
  const auto r = run_to_end(c, "", Clock::now() + 200ms, 1024, 4096, {});
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.status.has_value());
  EXPECT_LT(Clock::now() - t0, 5s);
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the grandchild survived the timeout";
}

TEST(ChildProcess, OutputCapKillsAndKeepsTheCap) {
  auto c = ChildProcess::spawn(sh("yes flood"));
  const auto r = run_to_end(c, "", Clock::now() + 10s, 10000, 4096, {});
  EXPECT_TRUE(r.too_large);
  EXPECT_EQ(r.out.size(), 10000u);
}

TEST(ChildProcess, CancelStopsIt) {
  auto c = ChildProcess::spawn(sh("sleep 30"));
  std::stop_source stop;
  std::jthread canceller([&] {
    std::this_thread::sleep_for(100ms);
    stop.request_stop();
  });
  const auto t0 = Clock::now();
  const auto r = run_to_end(c, "", Clock::now() + 30s, 1024, 4096, stop.get_token());
  EXPECT_TRUE(r.cancelled);
  EXPECT_LT(Clock::now() - t0, 5s);
}

TEST(ChildProcess, EnvironmentIsOnlyTheAllowlistAndTheSetValues) {
  setenv("MNEMO_TEST_SECRET", "hunter2", 1);
  auto c = ChildProcess::spawn(SpawnSpec{{"/usr/bin/env"}, child_environment({"PATH"}, {{"GREETING", "hi"}}), ""});
  const auto r = run_to_end(c, "", Clock::now() + 10s, 1 << 16, 4096, {});
  EXPECT_NE(r.out.find("GREETING=hi\n"), std::string::npos);
  EXPECT_NE(r.out.find("PATH="), std::string::npos);
  EXPECT_EQ(r.out.find("hunter2"), std::string::npos);
}

TEST(ChildProcess, WorkingDirectoryIsApplied) {
  const auto dir = std::filesystem::temp_directory_path();
  auto c = ChildProcess::spawn(SpawnSpec{{"pwd"}, child_environment({"PATH"}, {}), dir.string()});
  const auto r = run_to_end(c, "", Clock::now() + 10s, 4096, 4096, {});
  EXPECT_EQ(r.out, std::filesystem::canonical(dir).string() + "\n");
}

TEST(ChildProcess, MissingProgramIsAClearError) {
  try {
    ChildProcess::spawn(SpawnSpec{{"mnemo-no-such-program"}, {}, ""});
    FAIL() << "spawned a missing program";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("mnemo-no-such-program"), std::string::npos) << e.what();
  }
}

TEST(ChildProcess, ToolThatIgnoresItsInputDoesNotHurtUs) {
  auto c = ChildProcess::spawn(sh("exit 0"));
  const auto r = run_to_end(c, std::string(1 << 20, 'y'), Clock::now() + 10s, 1024, 4096, {});
  ASSERT_TRUE(r.status.has_value());
  EXPECT_EQ(WEXITSTATUS(*r.status), 0);
}

}  // namespace
}  // namespace mnemo::plugins
