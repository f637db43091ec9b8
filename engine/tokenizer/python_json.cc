#include "engine/tokenizer/python_json.h"

#include "engine/tokenizer/error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace mnemo::engine {

namespace {

// Python prints floats with repr(): the shortest digits that round-trip,
// in plain notation for exponents in [-4, 16), otherwise as d.ddde+XX.
std::string python_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[48];
  for (int precision = 0; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  std::string sign;
  if (s[0] == '-') { sign = "-"; s.erase(0, 1); }
  const auto e = s.find('e');
  const int exp10 = std::stoi(s.substr(e + 1));
  std::string digits = s.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  if (exp10 >= -4 && exp10 < 16) {
    if (exp10 < 0) return sign + "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
    const auto int_len = static_cast<size_t>(exp10 + 1);
    if (digits.size() <= int_len) return sign + digits + std::string(int_len - digits.size(), '0') + ".0";
    return sign + digits.substr(0, int_len) + "." + digits.substr(int_len);
  }
  std::string mantissa = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
  char exp_buf[24];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
  return sign + mantissa + exp_buf;
}

void dump(const nlohmann::ordered_json& v, int indent, int depth, std::string& out) {
  using V = nlohmann::ordered_json::value_t;
  // Callers bound what they pass far below this; the stack must never be
  // what stops a deeper value.
  if (depth > 512) throw TokenizerError("python_json_dumps: value nested deeper than 512 levels");
  auto newline = [&](int d) {
    out.push_back('\n');
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  switch (v.type()) {
    case V::object: {
      if (v.empty()) { out += "{}"; return; }
      out.push_back('{');
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += indent >= 0 ? "," : ", ";
        first = false;
        if (indent >= 0) newline(depth + 1);
        out += nlohmann::ordered_json(it.key()).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
        out += ": ";
        dump(it.value(), indent, depth + 1, out);
      }
      if (indent >= 0) newline(depth);
      out.push_back('}');
      return;
    }
    case V::array: {
      if (v.empty()) { out += "[]"; return; }
      out.push_back('[');
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(depth + 1);
        dump(v[i], indent, depth + 1, out);
      }
      if (indent >= 0) newline(depth);
      out.push_back(']');
      return;
    }
    case V::number_float:
      out += python_float(v.get<double>());
      return;
    default:
      out += v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
      return;
  }
}

}  // namespace

std::string python_json_dumps(const nlohmann::ordered_json& value, int indent) {
  std::string out;
  dump(value, indent, 0, out);
  return out;
}

}  // namespace mnemo::engine
