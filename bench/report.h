#pragma once
// Shared by the benchmarks: a Markdown table that is also written as JSON,
// and the --json flag.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::bench {

class Table {
 public:
  explicit Table(std::vector<std::string> columns) : columns_(std::move(columns)) {}

  // One row: values in column order; numbers keep their type in the JSON.
  void add(const std::vector<nlohmann::json>& values) { rows_.push_back(values); }

  void print() const {
    std::string rule = "|";
    std::printf("|");
    for (const auto& c : columns_) std::printf(" %s |", c.c_str()), rule.append("---|");
    std::printf("\n%s\n", rule.c_str());
    for (const auto& r : rows_) {
      std::printf("|");
      for (const auto& v : r) std::printf(" %s |", cell(v).c_str());
      std::printf("\n");
    }
    std::fflush(stdout);
  }

  nlohmann::json to_json() const {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : rows_) {
      nlohmann::json o;
      for (size_t i = 0; i < columns_.size() && i < r.size(); ++i) o[columns_[i]] = r[i];
      out.push_back(o);
    }
    return out;
  }

 private:
  static std::string cell(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) {
      char buf[32];
      const double d = v.get<double>();
      std::snprintf(buf, sizeof buf, d >= 100 ? "%.0f" : d >= 10 ? "%.1f" : "%.2f", d);
      return buf;
    }
    return v.dump();
  }

  std::vector<std::string> columns_;
  std::vector<std::vector<nlohmann::json>> rows_;
};

// Value of --name=V or --name V, else fallback.
inline std::string flag(int argc, char** argv, std::string_view name, std::string fallback) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == name && i + 1 < argc) return argv[i + 1];
    if (a.size() > name.size() && a.substr(0, name.size()) == name && a[name.size()] == '=')
      return std::string(a.substr(name.size() + 1));
  }
  return fallback;
}

// The 1, 5 and 15 minute load averages: how idle the shared machine was.
inline std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

inline void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump(2) << "\n";
  std::printf("\nwrote %s\n", path.c_str());
}

}  // namespace mnemo::bench
