#pragma once
// The table behind parse() and help_text(): one row per flag. Internal to
// mnemo_config.
#include <functional>
#include <span>
#include <string>

#include "daemon/config/options.h"

namespace mnemo::daemon::config {

struct FlagSpec {
  const char* name;     // without the leading "--"
  const char* meta;     // the value's placeholder in --help; "" for a switch (no value)
  const char* dflt;     // the default as --help shows it
  const char* meaning;  // one line for --help
  // Stores `value` into `o`; `source` ("--port" or "MNEMO_PORT") names the
  // origin in errors.
  std::function<void(Options& o, const std::string& value, const std::string& source)> apply;
};

std::span<const FlagSpec> flag_table();

// "kv-cache-bytes" -> "MNEMO_KV_CACHE_BYTES".
std::string env_name(const std::string& flag);

// Throws ConfigError "<source>: expected <what>, got '<text>'".
[[noreturn]] void bad_value(const std::string& source, const std::string& what, const std::string& text);

int64_t parse_integer(const std::string& source, const std::string& text, int64_t lo, int64_t hi);
LogLevel parse_log_level(const std::string& source, const std::string& text);
// 1/true/yes/on or 0/false/no/off.
bool parse_bool(const std::string& source, const std::string& text);

}  // namespace mnemo::daemon::config
