#include "daemon/app/worker_pool.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace mnemo::daemon::app {

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::post(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void WorkerPool::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      ++busy_;
    }
    try {
      job();
    } catch (const std::exception& e) {
      // A job's failure is its own: report it and keep serving the rest.
      spdlog::error("worker job failed: {}", e.what());
    }
    std::lock_guard lock(mu_);
    if (--busy_ == 0 && jobs_.empty()) idle_.notify_all();
  }
}

void WorkerPool::wait_idle() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return busy_ == 0 && jobs_.empty(); });
}

void SerialQueue::post(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
    if (running_) return;
    running_ = true;
  }
  pool_.post([self = shared_from_this()] { self->drain(); });
}

bool SerialQueue::idle() {
  std::lock_guard lock(mu_);
  return !running_ && jobs_.empty();
}

void SerialQueue::drain() {
  for (;;) {
    std::function<void()> job;
    {
      std::lock_guard lock(mu_);
      if (jobs_.empty()) {
        running_ = false;
        return;
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    try {
      job();
    } catch (const std::exception& e) {
      spdlog::error("queued job failed: {}", e.what());
    }
  }
}

}  // namespace mnemo::daemon::app
