#pragma once
// Threads for work that may block (SQLite commits, tokenizing, rendering)
// so the network threads never do, and serial queues on top of it: the jobs
// of one queue run one at a time, in order, on whichever worker is free.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace mnemo::daemon::app {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // runs what is queued, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void post(std::function<void()> job);
  // Waits until no job is queued or running (jobs posted meanwhile count).
  void wait_idle();

 private:
  void run();
  int busy_ = 0;
  std::condition_variable idle_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Jobs posted here run in order, never two at once. Holds the pool by
// reference: the pool must outlive the queue's jobs.
class SerialQueue : public std::enable_shared_from_this<SerialQueue> {
 public:
  explicit SerialQueue(WorkerPool& pool) : pool_(pool) {}
  void post(std::function<void()> job);
  // Nothing queued or running: work done now, on the caller's thread, keeps
  // the queue's order (when only one thread posts).
  bool idle();

 private:
  void drain();
  WorkerPool& pool_;
  std::mutex mu_;
  std::deque<std::function<void()>> jobs_;
  bool running_ = false;
};

}  // namespace mnemo::daemon::app
