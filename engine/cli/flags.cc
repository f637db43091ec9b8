#include "engine/cli/flags.h"

#include <charconv>
#include <cmath>
#include <iostream>
#include <sstream>

namespace mnemo::cli {

Flags::Flags(std::string usage, std::string summary) : usage_(std::move(usage)), summary_(std::move(summary)) {}

Flags& Flags::value(const std::string& name, const std::string& meta, const std::string& help,
                    std::optional<std::string> dflt) {
  order_.push_back(name);
  specs_[name] = {meta, help, std::move(dflt), false};
  return *this;
}

Flags& Flags::toggle(const std::string& name, const std::string& help) {
  order_.push_back(name);
  specs_[name] = {"", help, std::nullopt, true};
  return *this;
}

bool Flags::parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << help();
      return false;
    }
    if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "' (see --help)");
    std::string name = a.substr(2), val;
    const size_t eq = name.find('=');
    const bool inline_val = eq != std::string::npos;
    if (inline_val) {
      val = name.substr(eq + 1);
      name.resize(eq);
    }
    const auto it = specs_.find(name);
    if (it == specs_.end()) throw UsageError("unknown flag --" + name + " (see --help)");
    if (it->second.is_toggle) {
      if (inline_val) throw UsageError("--" + name + " takes no value");
      values_[name] = std::string(1, '1');
      continue;
    }
    if (!inline_val) {
      if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value " + it->second.meta);
      val = args[++i];
    }
    values_[name] = val;
  }
  for (const auto& [name, spec] : specs_)
    if (spec.dflt && !values_.count(name)) values_[name] = *spec.dflt;
  return true;
}

std::string Flags::help() const {
  std::ostringstream o;
  o << "usage: " << usage_ << "\n\n" << summary_ << "\n\nflags:\n";
  for (const std::string& n : order_) {
    const Spec& s = specs_.at(n);
    std::string left = "  --";
    left.append(n);
    if (!s.meta.empty()) left.append(" ").append(s.meta);
    o << left << std::string(left.size() < 30 ? 30 - left.size() : 1, ' ') << s.help;
    if (s.dflt) o << " (default: " << *s.dflt << ")";
    o << "\n";
  }
  o << "  --help                      show this help\n";
  return o.str();
}

bool Flags::has(const std::string& name) const { return values_.count(name) != 0; }

std::string Flags::str(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) throw UsageError("--" + name + " is required (see --help)");
  return it->second;
}

int64_t Flags::integer(const std::string& name, int64_t lo, int64_t hi) const {
  const std::string s = str(name);
  int64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) throw UsageError("--" + name + " must be an integer, got '" + s + "'");
  if (v < lo || v > hi)
    throw UsageError("--" + name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + s);
  return v;
}

double Flags::number(const std::string& name) const {
  const std::string s = str(name);
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw UsageError("--" + name + " must be a number, got '" + s + "'");
}

std::vector<int32_t> parse_id_list(const std::string& flag, const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    int32_t v = 0;
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v < 0)
      throw UsageError("--" + flag + " must be comma-separated non-negative integers, bad item '" + item + "'");
    ids.push_back(v);
    pos = comma + 1;
  }
  return ids;
}

}  // namespace mnemo::cli
