#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mnemo::memory::ttl {

// Recorded tool durations (seconds), per tool and over all tools, each a
// sliding window so old behaviour ages out and memory stays bounded. The
// number of distinct tools is bounded too (tool names come from clients):
// past max_tools, the tool recorded least recently is forgotten.
// Internally locked: safe to share between threads.
class ToolStats {
 public:
  explicit ToolStats(size_t per_tool_window = 1000, size_t global_window = 10000,
                     size_t max_tools = 1024);
  ToolStats(const ToolStats& other);
  ToolStats& operator=(const ToolStats& other);

  void record(const std::string& tool, double seconds);  // negative, NaN, inf ignored
  size_t total() const;                                  // samples in the global window
  size_t count(const std::string& tool) const;           // samples in that tool's window
  std::vector<double> samples(const std::string& tool) const;  // sorted ascending
  std::vector<double> global_samples() const;                  // sorted ascending
  size_t tools() const;                                        // distinct tools held

  // {"per_tool_window", "global_window", "global": [...], "tools": {name: [...]}},
  // samples oldest first. load() replaces the contents (keeping this object's
  // window sizes, so the newest samples survive a smaller window) and throws
  // std::invalid_argument naming the bad field; on a throw nothing changes.
  nlohmann::json to_json() const;
  void load(const nlohmann::json& j);

 private:
  // Insertion order (to evict the oldest) beside a sorted copy (for the CDF).
  struct Window {
    std::deque<double> fifo;
    std::vector<double> sorted;
    uint64_t last_use = 0;
    void add(double x, size_t cap);
  };

  size_t per_tool_window_;
  size_t global_window_;
  size_t max_tools_;
  mutable std::mutex mu_;
  Window global_;
  std::map<std::string, Window, std::less<>> tools_;
  uint64_t clock_ = 0;
};

}  // namespace mnemo::memory::ttl
