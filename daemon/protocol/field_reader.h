#pragma once
// Typed reads of JSON fields for the client event parser. Every failure is
// a ProtocolError naming the field's path (e.g. "messages[1].role"), what
// was expected and what came. Internal to mnemo_protocol.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/protocol/error.h"
#include "daemon/protocol/json.h"

namespace mnemo::daemon::protocol::detail {

// "a.b" from "a" and "b"; "b" when base is empty.
std::string join(const std::string& base, std::string_view key);
// "a[3]".
std::string index_path(const std::string& base, size_t i);

// A value for an error message: short scalars as JSON, else their kind.
std::string describe(const Json& v);

[[noreturn]] void fail_invalid(const std::string& path, const std::string& expected, const Json& got);
[[noreturn]] void fail_missing(const std::string& path, const std::string& expected);

// "a string of 1 to 128 bytes", "a string of at most 256 bytes", "a string".
std::string string_kind(size_t min_bytes, size_t max_bytes);

// Checks of one value at `path`.
std::string read_string(const Json& v, const std::string& path, size_t min_bytes, size_t max_bytes);
const Json& read_object(const Json& v, const std::string& path);

class ObjectReader {
 public:
  // obj must be an object (callers check with read_object).
  ObjectReader(const Json& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

  // nullptr when the key is absent or null.
  const Json* find(std::string_view key) const;
  std::string path(std::string_view key) const { return join(path_, key); }
  const std::string& path() const { return path_; }

  std::string string(std::string_view key, size_t min_bytes, size_t max_bytes) const;
  std::optional<std::string> opt_string(std::string_view key, size_t min_bytes, size_t max_bytes) const;
  // A number in [lo, hi], or (lo, hi] when lo_open.
  std::optional<double> opt_number(std::string_view key, double lo, double hi, bool lo_open = false) const;
  std::optional<int64_t> opt_integer(std::string_view key, int64_t lo, int64_t hi) const;
  std::optional<uint64_t> opt_unsigned(std::string_view key) const;
  const Json& object(std::string_view key) const;
  const Json* opt_object(std::string_view key) const;
  // An array of min_items to max_items items.
  const Json* opt_array(std::string_view key, size_t min_items, size_t max_items) const;

 private:
  const Json& obj_;
  std::string path_;
};

}  // namespace mnemo::daemon::protocol::detail
