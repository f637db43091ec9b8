// Store: kill -9 while appending. A child process appends messages and
// reports each sequence number on a pipe only after append_message returned
// (the point where mnemod acknowledges a message to its client); the parent
// kills it with SIGKILL at a seeded random moment, reopens the store, and
// checks every acknowledged message is there, with no holes before it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "daemon/store/store.h"
#include "store_test_util.h"

namespace mnemo::daemon::store {
namespace {

using testing::make_message;
using testing::make_session;
using testing::TempDir;

struct Ack {
  int64_t seq;
  int64_t index;  // which message of its child this was
};

std::string content_of(int round, int64_t index) {
  return "round " + std::to_string(round) + " message " + std::to_string(index);
}

// Never returns: appends until killed. Exit codes only on failure.
[[noreturn]] void child_append_forever(const std::filesystem::path& db, int round, int fd) {
  try {
    Store store(db);
    for (int64_t i = 0;; ++i) {
      Ack a{store.append_message("sess_crash", make_message(Role::User, content_of(round, i), i)), i};
      if (::write(fd, &a, sizeof a) != static_cast<ssize_t>(sizeof a)) ::_exit(3);
    }
  } catch (...) {
    ::_exit(2);
  }
}

// Reads one Ack; false at end of file.
bool read_ack(int fd, Ack& a) {
  auto* p = reinterpret_cast<char*>(&a);
  size_t got = 0;
  while (got < sizeof a) {
    ssize_t n = ::read(fd, p + got, sizeof a - got);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

TEST(StoreCrash, AcknowledgedMessagesSurviveKillNine) {
  TempDir dir;
  Store(dir.db()).create_session(make_session("sess_crash", 1));

  std::mt19937 rng(20240611);
  constexpr int kRounds = 20;
  std::map<int64_t, std::string> acked;  // seq -> content, over all rounds
  for (int round = 0; round < kRounds; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      child_append_forever(dir.db(), round, fds[1]);
    }
    ::close(fds[1]);

    // Wait for a few acknowledgements, then a little more, then kill.
    const int wait_for = std::uniform_int_distribution<int>(1, 20)(rng);
    const int extra_us = std::uniform_int_distribution<int>(0, 3000)(rng);
    Ack a{};
    int seen = 0;
    while (seen < wait_for && read_ack(fds[0], a)) {
      acked[a.seq] = content_of(round, a.index);
      ++seen;
    }
    ASSERT_EQ(seen, wait_for) << "child stopped before it was killed (round " << round << ")";
    std::this_thread::sleep_for(std::chrono::microseconds(extra_us));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child exit status " << status;
    // Everything written to the pipe before the kill was acknowledged.
    while (read_ack(fds[0], a)) acked[a.seq] = content_of(round, a.index);
    ::close(fds[0]);

    Store store(dir.db());
    auto h = store.history("sess_crash");
    ASSERT_GE(h.size(), static_cast<size_t>(acked.rbegin()->first)) << "round " << round;
    for (size_t i = 0; i < h.size(); ++i) ASSERT_EQ(h[i].seq, static_cast<int64_t>(i + 1)) << "hole in the history";
    for (auto& [seq, content] : acked) {
      ASSERT_EQ(h[static_cast<size_t>(seq - 1)].content, content) << "seq " << seq << ", round " << round;
    }
  }
  EXPECT_GE(acked.size(), static_cast<size_t>(kRounds));
}

}  // namespace
}  // namespace mnemo::daemon::store
