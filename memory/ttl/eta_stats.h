#pragma once

#include <cstdint>
#include <mutex>

#include <nlohmann/json.hpp>

namespace mnemo::memory::ttl {

// Continuum's "memoryfulness" eta = -Corr(k, N - k): over finished programs
// of N turns, the pairs (turns served k, turns left N - k) for k = 1..N.
// Fixed turn counts give 1 (serving a turn says one fewer is left), geometric
// ones 0 (how many turns are left does not depend on how many were served).
// Kept as streaming sums (closed forms per program), so memory is O(1).
// Internally locked: safe to share between threads.
class EtaStats {
 public:
  EtaStats() = default;
  EtaStats(const EtaStats& other);
  EtaStats& operator=(const EtaStats& other);

  void add_program(int64_t turns);  // turns < 1 ignored
  double eta() const;               // in [-1, 1]; 0 while undefined (no variance)
  int64_t programs() const;

  // load() throws std::invalid_argument naming the bad field; on a throw
  // nothing changes.
  nlohmann::json to_json() const;
  void load(const nlohmann::json& j);

 private:
  struct Sums {
    int64_t programs = 0;
    long double n = 0, k = 0, r = 0, kk = 0, rr = 0, kr = 0;  // r = N - k
  };
  mutable std::mutex mu_;
  Sums s_;
};

}  // namespace mnemo::memory::ttl
