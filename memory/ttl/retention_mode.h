#pragma once

#include <string>
#include <string_view>

namespace mnemo::memory::ttl {

// How long a program's KV survives a tool call: the `--kv-retention` flag.
struct RetentionMode {
  enum class Kind { None, Fixed, Continuum } kind = Kind::Continuum;
  double fixed_seconds = 2.0;  // Kind::Fixed only

  // "none", "fixed" (2 s, the Continuum authors' public code), "fixed:SECONDS"
  // (0..3600), "continuum". Throws std::invalid_argument naming the bad text.
  static RetentionMode parse(std::string_view text);
  // "none", "fixed:2", "continuum": parse(to_string()) == *this.
  std::string to_string() const;

  bool operator==(const RetentionMode&) const = default;
};

}  // namespace mnemo::memory::ttl
