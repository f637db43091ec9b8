#include "memory/ttl/retention_mode.h"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <system_error>

namespace mnemo::memory::ttl {
namespace {

constexpr double kMaxFixedSeconds = 3600;

[[noreturn]] void bad(std::string_view text, std::string_view why) {
  throw std::invalid_argument("--kv-retention '" + std::string(text) + "': " + std::string(why) +
                              " (expected none, fixed, fixed:SECONDS with 0 <= SECONDS <= 3600, "
                              "or continuum)");
}

}  // namespace

RetentionMode RetentionMode::parse(std::string_view text) {
  RetentionMode m;
  if (text == "none") {
    m.kind = Kind::None;
  } else if (text == "continuum") {
    m.kind = Kind::Continuum;
  } else if (text == "fixed") {
    m.kind = Kind::Fixed;
  } else if (text.starts_with("fixed:")) {
    std::string_view num = text.substr(6);
    if (num.empty()) bad(text, "missing seconds after 'fixed:'");
    double v = 0;
    auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (ec != std::errc() || end != num.data() + num.size()) bad(text, "seconds are not a number");
    if (!std::isfinite(v) || v < 0 || v > kMaxFixedSeconds) bad(text, "seconds out of range");
    m.kind = Kind::Fixed;
    m.fixed_seconds = v;
  } else {
    bad(text, "unknown mode");
  }
  return m;
}

std::string RetentionMode::to_string() const {
  switch (kind) {
    case Kind::None:
      return "none";
    case Kind::Continuum:
      return "continuum";
    case Kind::Fixed: {
      // Shortest representation, so parse() gives back the same double.
      char buf[64];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, fixed_seconds);
      (void)ec;
      return "fixed:" + std::string(buf, end);
    }
  }
  return "continuum";
}

}  // namespace mnemo::memory::ttl
