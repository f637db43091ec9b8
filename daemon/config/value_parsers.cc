#include <cctype>
#include <charconv>
#include <limits>

#include "daemon/config/flag_table.h"

namespace mnemo::daemon::config {

bool parse_bool(const std::string& source, const std::string& text) {
  for (const char* t : {"1", "true", "yes", "on"})
    if (text == t) return true;
  for (const char* f : {"0", "false", "no", "off"})
    if (text == f) return false;
  bad_value(source, "1, true, yes, on, 0, false, no or off", text);
}

void bad_value(const std::string& source, const std::string& what, const std::string& text) {
  throw ConfigError(source + ": expected " + what + ", got '" + text + "'");
}

int64_t parse_integer(const std::string& source, const std::string& text, int64_t lo, int64_t hi) {
  const std::string what = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end || v < lo || v > hi) bad_value(source, what, text);
  return v;
}

int64_t parse_byte_size(const std::string& what, const std::string& text) {
  const std::string expected = "a byte size such as 1048576, 512K, 512M or 2G";
  uint64_t n = 0;
  const char* begin = text.data();
  const char* end = begin + text.size();
  auto [p, ec] = std::from_chars(begin, end, n);
  if (text.empty() || ec != std::errc() || p == begin) bad_value(what, expected, text);

  std::string suffix(p, end);
  for (char& c : suffix) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (suffix.size() >= 2 && suffix.ends_with("IB")) suffix.resize(suffix.size() - 2);
  else if (!suffix.empty() && suffix.back() == 'B') suffix.pop_back();
  int shift = 0;
  if (suffix == "K") shift = 10;
  else if (suffix == "M") shift = 20;
  else if (suffix == "G") shift = 30;
  else if (suffix == "T") shift = 40;
  else if (!suffix.empty()) bad_value(what, expected, text);

  constexpr uint64_t max = uint64_t(std::numeric_limits<int64_t>::max());
  if (n > (max >> shift)) bad_value(what, expected + " (at most 2^63 - 1 bytes)", text);
  return int64_t(n << shift);
}

LogLevel parse_log_level(const std::string& source, const std::string& text) {
  if (text == "trace") return LogLevel::Trace;
  if (text == "debug") return LogLevel::Debug;
  if (text == "info") return LogLevel::Info;
  if (text == "warn" || text == "warning") return LogLevel::Warn;
  if (text == "error") return LogLevel::Error;
  if (text == "critical") return LogLevel::Critical;
  if (text == "off") return LogLevel::Off;
  bad_value(source, "a log level (trace, debug, info, warn, error, critical, off)", text);
}

std::string to_string(LogLevel level) {
  switch (level) {
    case LogLevel::Trace: return "trace";
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
    case LogLevel::Critical: return "critical";
    case LogLevel::Off: return "off";
  }
  return "info";
}

std::string to_string(Weights weights) {
  return weights == Weights::Mapped ? "mapped" : weights == Weights::Copy ? "copy" : "resident";
}
std::string to_string(WeightsDType d) { return d == WeightsDType::Q8_0 ? "q8_0" : "auto"; }

}  // namespace mnemo::daemon::config
