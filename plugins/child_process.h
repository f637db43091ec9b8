#pragma once
// A child process with pipes on stdin, stdout and stderr, in its own process
// group so that a timeout kills everything it started. No shell is involved:
// argv is executed as given (argv[0] looked up in mnemod's PATH).
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace mnemo::plugins {

struct SpawnSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "KEY=VALUE": the child's whole environment
  std::string cwd;               // empty: mnemod's
};

class ChildProcess {
 public:
  // Throws std::runtime_error naming argv[0] and the reason (not found, not
  // executable, bad working directory).
  static ChildProcess spawn(const SpawnSpec& spec);

  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills the group and reaps the child if it still runs.
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  int stdin_fd() const { return in_; }    // -1 once closed
  int stdout_fd() const { return out_; }
  int stderr_fd() const { return err_; }
  void close_stdin();
  // Signals every process of the group (the child and what it started).
  void kill_group(int signal);
  // The raw waitpid status, reaping the child; blocks.
  int wait();
  // The status if it has exited, without blocking.
  std::optional<int> try_wait();
  bool reaped() const { return status_.has_value(); }

 private:
  ChildProcess() = default;
  void reset() noexcept;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::optional<int> status_;
};

// Whether spawn() would find `command` as an executable file: searched in
// mnemod's PATH without a '/', else taken relative to the child's cwd.
bool resolves_to_program(const std::string& command, const std::string& cwd);

// The child's environment: the variables of mnemod's environment named in
// `allow` (those that are set), then `set` on top.
std::vector<std::string> child_environment(const std::vector<std::string>& allow,
                                           const std::map<std::string, std::string>& set);

// write(2) that reports a closed pipe as EPIPE without raising SIGPIPE in
// this process, whatever its signal dispositions.
long write_no_sigpipe(int fd, const void* data, size_t size);

// "exited with status 3", "killed by signal 9 (Killed)".
std::string describe_status(int status);

struct RunOutput {
  std::string out, err;      // err keeps its last max_err bytes
  std::optional<int> status;  // absent when killed for one of the reasons below
  bool timed_out = false, cancelled = false, too_large = false;
  std::chrono::steady_clock::duration elapsed{};
};

// Writes `input` to the child's stdin and closes it, reads stdout (at most
// max_out bytes) and stderr until both end, then reaps it. Past the
// deadline, on cancel, or when stdout passes max_out, the whole group is
// killed (SIGKILL) and the reason set.
RunOutput run_to_end(ChildProcess& child, const std::string& input, std::chrono::steady_clock::time_point deadline,
                     size_t max_out, size_t max_err, std::stop_token cancel);

}  // namespace mnemo::plugins
