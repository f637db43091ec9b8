#include "plugins/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

extern char** environ;

namespace mnemo::plugins {

namespace {

using std::chrono::steady_clock;

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  int take_r() { return std::exchange(r, -1); }
  int take_w() { return std::exchange(w, -1); }
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

int poll_ms(steady_clock::time_point deadline, int cap_ms) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now()).count();
  return int(std::clamp<int64_t>(left, 0, cap_ms));
}

// Exited (a zombie, not reaped): its group can still be signalled safely.
bool has_exited(pid_t pid) {
  siginfo_t info{};
  info.si_pid = 0;
  return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

}  // namespace

ChildProcess ChildProcess::spawn(const SpawnSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) throw std::runtime_error("empty command");
  Pipe in, out, err;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&fa, in.r, 0);
  posix_spawn_file_actions_adddup2(&fa, out.w, 1);
  posix_spawn_file_actions_adddup2(&fa, err.w, 2);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());
  // Own group (killable as one); default signal dispositions and mask, since
  // mnemod ignores SIGPIPE and a tool should not inherit that.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  auto argv = c_strings(spec.argv);
  auto envp = c_strings(spec.env);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, spec.argv[0].c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    std::string why = std::strerror(rc);
    if (rc == ENOENT && !spec.cwd.empty() && access(spec.cwd.c_str(), X_OK) != 0)
      why = "working directory '" + spec.cwd + "' is not accessible";
    throw std::runtime_error("cannot start '" + spec.argv[0] + "': " + why);
  }
  ChildProcess c;
  c.pid_ = pid;
  c.in_ = in.take_w();
  c.out_ = out.take_r();
  c.err_ = err.take_r();
  return c;
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), in_(std::exchange(o.in_, -1)), out_(std::exchange(o.out_, -1)),
      err_(std::exchange(o.err_, -1)), status_(std::exchange(o.status_, std::nullopt)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    reset();
    pid_ = std::exchange(o.pid_, -1);
    in_ = std::exchange(o.in_, -1);
    out_ = std::exchange(o.out_, -1);
    err_ = std::exchange(o.err_, -1);
    status_ = std::exchange(o.status_, std::nullopt);
  }
  return *this;
}

ChildProcess::~ChildProcess() { reset(); }

void ChildProcess::reset() noexcept {
  close_fd(in_);
  close_fd(out_);
  close_fd(err_);
  if (pid_ > 0 && !status_) {
    ::kill(-pid_, SIGKILL);
    int st = 0;
    while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
  status_.reset();
}

void ChildProcess::close_stdin() { close_fd(in_); }

void ChildProcess::kill_group(int signal) {
  if (pid_ > 0 && !status_) ::kill(-pid_, signal);
}

int ChildProcess::wait() {
  if (status_) return *status_;
  int st = 0;
  while (waitpid(pid_, &st, 0) < 0) {
    if (errno != EINTR) {
      st = 0;
      break;
    }
  }
  status_ = st;
  return st;
}

std::optional<int> ChildProcess::try_wait() {
  if (status_) return status_;
  int st = 0;
  const pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) status_ = st;
  return status_;
}

long write_no_sigpipe(int fd, const void* data, size_t size) {
  // Block SIGPIPE on this thread for the write, then take back the one the
  // write may have raised, so nothing is delivered.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t w = ::write(fd, data, size);
  const int saved = errno;
  if (w < 0 && errno == EPIPE && !was_pending) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return long(w);
}

namespace {

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

bool resolves_to_program(const std::string& command, const std::string& cwd) {
  if (command.find('/') != std::string::npos) {
    if (command.front() == '/' || cwd.empty()) return is_executable_file(command);
    return is_executable_file(cwd + "/" + command);
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/bin:/usr/bin";
  while (true) {
    const size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    if (dir.empty()) dir = ".";
    if (is_executable_file(dir + "/" + command)) return true;
    if (colon == std::string_view::npos) return false;
    dirs.remove_prefix(colon + 1);
  }
}

std::vector<std::string> child_environment(const std::vector<std::string>& allow,
                                           const std::map<std::string, std::string>& set) {
  std::map<std::string, std::string> env;
  for (const auto& name : allow)
    if (const char* v = std::getenv(name.c_str())) env[name] = v;
  for (const auto& [k, v] : set) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "ended with wait status " + std::to_string(status);
}

RunOutput run_to_end(ChildProcess& child, const std::string& input, steady_clock::time_point deadline,
                     size_t max_out, size_t max_err, std::stop_token cancel) {
  const auto t0 = steady_clock::now();
  RunOutput r;
  for (int fd : {child.stdin_fd(), child.stdout_fd(), child.stderr_fd()})
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t written = 0;
  if (input.empty()) child.close_stdin();
  bool out_open = child.stdout_fd() >= 0, err_open = child.stderr_fd() >= 0;
  char buf[65536];
  auto stop = [&](bool& flag) {
    flag = true;
    child.kill_group(SIGKILL);
  };
  while (out_open || err_open || child.stdin_fd() >= 0) {
    if (cancel.stop_requested()) { stop(r.cancelled); break; }
    if (steady_clock::now() >= deadline) { stop(r.timed_out); break; }
    pollfd fds[3];
    int n = 0;
    if (child.stdin_fd() >= 0) fds[n++] = {child.stdin_fd(), POLLOUT, 0};
    if (out_open) fds[n++] = {child.stdout_fd(), POLLIN, 0};
    if (err_open) fds[n++] = {child.stderr_fd(), POLLIN, 0};
    // Short waits so that cancel is noticed without a wake-up fd.
    if (poll(fds, nfds_t(n), poll_ms(deadline, 50)) < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      const int fd = fds[i].fd;
      if (fd == child.stdin_fd()) {
        const long w = write_no_sigpipe(fd, input.data() + written, input.size() - written);
        if (w > 0) written += size_t(w);
        // A tool may exit without reading its input (EPIPE): not an error of ours.
        if (w < 0 && errno != EAGAIN && errno != EINTR) child.close_stdin();
        if (written == input.size()) child.close_stdin();
        continue;
      }
      const ssize_t got = ::read(fd, buf, sizeof buf);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0) {
        (fd == child.stdout_fd() ? out_open : err_open) = false;
        continue;
      }
      if (fd == child.stdout_fd()) {
        r.out.append(buf, size_t(got));
        if (r.out.size() > max_out) {
          r.out.resize(max_out);
          stop(r.too_large);
        }
      } else {
        r.err.append(buf, size_t(got));
        if (r.err.size() > 2 * max_err) r.err.erase(0, r.err.size() - max_err);
      }
    }
    if (r.too_large) break;
  }
  if (r.err.size() > max_err) r.err.erase(0, r.err.size() - max_err);
  // Both streams closed: wait for the exit, still bounded by the deadline.
  while (!r.timed_out && !r.cancelled && !r.too_large && !has_exited(child.pid())) {
    if (cancel.stop_requested()) { stop(r.cancelled); break; }
    if (steady_clock::now() >= deadline) { stop(r.timed_out); break; }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // What the tool left running in its group goes with it.
  child.kill_group(SIGKILL);
  const int st = child.wait();
  if (!r.timed_out && !r.cancelled && !r.too_large) r.status = st;
  r.elapsed = steady_clock::now() - t0;
  return r;
}


}  // namespace mnemo::plugins
