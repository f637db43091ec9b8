// Background continuation of episode caches (SessionMemoryOptions::background):
// a question whose episode's cache is behind by up to its budget is served
// from it as it is, and the cache is brought up to date here, off the
// response's path, for the next question routed to that episode.
#include <spdlog/spdlog.h>

#include "daemon/app/session_memory.h"

namespace mnemo::daemon::app {

std::unique_ptr<memory::compress::Policy> SessionMemory::episode_policy(const memory::compress::PolicyOptions& po) {
  // No representative text to score by: keep the recent history.
  if (po.text.empty()) return memory::compress::make_policy("streaming");
  return memory::compress::make_policy("patched", po);
}

bool SessionMemory::catch_up_serves(const Entry& held, const MemoryConfig& config, std::span<const int32_t> prompt,
                                    int64_t target, uint64_t salt) {
  const int64_t have = int64_t(held.tokens.size()), behind = target - have;
  return held.config == config && held.salt == salt && behind >= config.block_tokens &&
         behind <= config.budget_tokens && have <= int64_t(prompt.size()) &&
         std::equal(held.tokens.begin(), held.tokens.end(), prompt.begin());
}

bool SessionMemory::schedule_catch_up(CatchUp job) {
  {
    std::lock_guard lock(catch_up_mu_);
    if (catch_up_stop_ || catch_up_keys_.count(job.key) || catch_up_queue_.size() >= opt_.background_queue)
      return false;
    catch_up_keys_.insert(job.key);
    catch_up_queue_.push_back(std::move(job));
  }
  catch_up_cv_.notify_one();
  return true;
}

void SessionMemory::catch_up_loop() {
  for (;;) {
    CatchUp job;
    {
      std::unique_lock lock(catch_up_mu_);
      catch_up_cv_.wait(lock, [this] { return catch_up_stop_ || !catch_up_queue_.empty(); });
      if (catch_up_stop_) return;
      job = std::move(catch_up_queue_.front());
      catch_up_queue_.pop_front();
    }
    try {
      catch_up(job);
    } catch (const std::exception& ex) {
      spdlog::warn("session memory: {}: background build failed: {}; the next question routed to it builds it", job.key,
                   ex.what());
    }
    std::lock_guard lock(catch_up_mu_);
    catch_up_keys_.erase(job.key);
  }
}

void SessionMemory::catch_up(const CatchUp& job) {
  // Not under build_mu_: the cache it continues stays held and serves while
  // this runs; the result replaces it only if it is still the one held.
  auto e = compress(job.key, job.config, job.tokens, job.salt, job.from.get(), episode_policy(job.policy));
  std::lock_guard lock(mu_);
  auto it = entries_.find(job.key);
  if (it == entries_.end() || it->second.first != job.from) {
    spdlog::info("session memory: {}: background build discarded: its cache was dropped or rebuilt meanwhile", job.key);
    return;
  }
  background_builds_.inc();
  keep_locked(job.key, std::move(e));
}

}  // namespace mnemo::daemon::app
