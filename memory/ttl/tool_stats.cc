#include "memory/ttl/tool_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace mnemo::memory::ttl {
namespace {

bool usable(double seconds) { return std::isfinite(seconds) && seconds >= 0; }

[[noreturn]] void bad(const std::string& field, const std::string& why) {
  throw std::invalid_argument("tool stats: '" + field + "' " + why);
}

// Samples oldest first, validated; only the newest `cap` are kept.
std::vector<double> read_samples(const nlohmann::json& j, const std::string& field) {
  if (!j.is_array()) bad(field, "must be an array of seconds");
  std::vector<double> out;
  out.reserve(j.size());
  for (const auto& v : j) {
    if (!v.is_number()) bad(field, "holds a value that is not a number");
    double x = v.get<double>();
    if (!usable(x)) bad(field, "holds a negative or non-finite duration");
    out.push_back(x);
  }
  return out;
}

}  // namespace

void ToolStats::Window::add(double x, size_t cap) {
  fifo.push_back(x);
  sorted.insert(std::upper_bound(sorted.begin(), sorted.end(), x), x);
  while (fifo.size() > cap) {
    auto it = std::lower_bound(sorted.begin(), sorted.end(), fifo.front());
    sorted.erase(it);
    fifo.pop_front();
  }
}

ToolStats::ToolStats(size_t per_tool_window, size_t global_window, size_t max_tools)
    : per_tool_window_(std::max<size_t>(per_tool_window, 1)),
      global_window_(std::max<size_t>(global_window, 1)),
      max_tools_(std::max<size_t>(max_tools, 1)) {}

ToolStats::ToolStats(const ToolStats& other) {
  std::lock_guard lock(other.mu_);
  per_tool_window_ = other.per_tool_window_;
  global_window_ = other.global_window_;
  max_tools_ = other.max_tools_;
  global_ = other.global_;
  tools_ = other.tools_;
  clock_ = other.clock_;
}

ToolStats& ToolStats::operator=(const ToolStats& other) {
  if (this == &other) return *this;
  std::scoped_lock lock(mu_, other.mu_);
  per_tool_window_ = other.per_tool_window_;
  global_window_ = other.global_window_;
  max_tools_ = other.max_tools_;
  global_ = other.global_;
  tools_ = other.tools_;
  clock_ = other.clock_;
  return *this;
}

void ToolStats::record(const std::string& tool, double seconds) {
  if (!usable(seconds)) return;
  std::lock_guard lock(mu_);
  global_.add(seconds, global_window_);
  auto it = tools_.find(tool);
  if (it == tools_.end()) {
    if (tools_.size() >= max_tools_) {
      auto stalest = std::min_element(tools_.begin(), tools_.end(), [](const auto& a, const auto& b) {
        return a.second.last_use < b.second.last_use;
      });
      tools_.erase(stalest);
    }
    it = tools_.emplace(tool, Window{}).first;
  }
  it->second.add(seconds, per_tool_window_);
  it->second.last_use = ++clock_;
}

size_t ToolStats::total() const {
  std::lock_guard lock(mu_);
  return global_.fifo.size();
}

size_t ToolStats::count(const std::string& tool) const {
  std::lock_guard lock(mu_);
  auto it = tools_.find(tool);
  return it == tools_.end() ? 0 : it->second.fifo.size();
}

std::vector<double> ToolStats::samples(const std::string& tool) const {
  std::lock_guard lock(mu_);
  auto it = tools_.find(tool);
  return it == tools_.end() ? std::vector<double>{} : it->second.sorted;
}

std::vector<double> ToolStats::global_samples() const {
  std::lock_guard lock(mu_);
  return global_.sorted;
}

size_t ToolStats::tools() const {
  std::lock_guard lock(mu_);
  return tools_.size();
}

nlohmann::json ToolStats::to_json() const {
  std::lock_guard lock(mu_);
  nlohmann::json tools = nlohmann::json::object();
  for (const auto& [name, w] : tools_) tools[name] = std::vector<double>(w.fifo.begin(), w.fifo.end());
  return {{"per_tool_window", per_tool_window_},
          {"global_window", global_window_},
          {"global", std::vector<double>(global_.fifo.begin(), global_.fifo.end())},
          {"tools", std::move(tools)}};
}

void ToolStats::load(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("tool stats: expected a JSON object");
  if (!j.contains("global")) bad("global", "is missing");
  if (!j.contains("tools")) bad("tools", "is missing");
  const auto& jt = j.at("tools");
  if (!jt.is_object()) bad("tools", "must be an object of tool name -> durations");

  // Built aside and swapped in, so junk leaves the current statistics intact.
  Window global;
  for (double x : read_samples(j.at("global"), "global")) global.add(x, global_window_);
  std::map<std::string, Window, std::less<>> tools;
  uint64_t clock = 0;
  for (const auto& [name, arr] : jt.items()) {
    Window w;
    for (double x : read_samples(arr, "tools." + name)) w.add(x, per_tool_window_);
    w.last_use = ++clock;
    tools.emplace(name, std::move(w));
  }
  // Too many tools for this instance: keep the largest windows, they say most.
  while (tools.size() > max_tools_) {
    auto smallest = std::min_element(tools.begin(), tools.end(), [](const auto& a, const auto& b) {
      return a.second.fifo.size() < b.second.fifo.size();
    });
    tools.erase(smallest);
  }

  std::lock_guard lock(mu_);
  global_ = std::move(global);
  tools_ = std::move(tools);
  clock_ = clock;
}

}  // namespace mnemo::memory::ttl
