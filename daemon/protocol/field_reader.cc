#include "daemon/protocol/field_reader.h"

#include <cmath>
#include <limits>

namespace mnemo::daemon::protocol::detail {

namespace {

std::string dump(const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string number_text(double v) {
  const std::string s = dump(Json(v));
  // 2.0 reads better as 2 in "from 0 to 2".
  return s.ends_with(".0") ? s.substr(0, s.size() - 2) : s;
}

}  // namespace

std::string join(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

std::string index_path(const std::string& base, size_t i) { return base + "[" + std::to_string(i) + "]"; }

std::string describe(const Json& v) {
  switch (v.type()) {
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array of " + std::to_string(v.size()) + " items";
    case Json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      if (s.size() > 40) return "a string of " + std::to_string(s.size()) + " bytes";
      return dump(v);
    }
    default: return dump(v);
  }
}

void fail_invalid(const std::string& path, const std::string& expected, const Json& got) {
  throw ProtocolError(ErrorCode::InvalidField, path + ": expected " + expected + ", got " + describe(got), path);
}

void fail_missing(const std::string& path, const std::string& expected) {
  throw ProtocolError(ErrorCode::MissingField, path + " is required (" + expected + ")", path);
}

std::string string_kind(size_t min_bytes, size_t max_bytes) {
  if (max_bytes == std::numeric_limits<size_t>::max()) return min_bytes ? "a non-empty string" : "a string";
  if (min_bytes == 0) return "a string of at most " + std::to_string(max_bytes) + " bytes";
  return "a string of " + std::to_string(min_bytes) + " to " + std::to_string(max_bytes) + " bytes";
}

std::string read_string(const Json& v, const std::string& path, size_t min_bytes, size_t max_bytes) {
  if (!v.is_string()) fail_invalid(path, string_kind(min_bytes, max_bytes), v);
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() < min_bytes || s.size() > max_bytes) fail_invalid(path, string_kind(min_bytes, max_bytes), v);
  return s;
}

const Json& read_object(const Json& v, const std::string& path) {
  if (!v.is_object()) fail_invalid(path, "an object", v);
  return v;
}

const Json* ObjectReader::find(std::string_view key) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string ObjectReader::string(std::string_view key, size_t min_bytes, size_t max_bytes) const {
  const Json* v = find(key);
  if (!v) fail_missing(path(key), string_kind(min_bytes, max_bytes));
  return read_string(*v, path(key), min_bytes, max_bytes);
}

std::optional<std::string> ObjectReader::opt_string(std::string_view key, size_t min_bytes, size_t max_bytes) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  return read_string(*v, path(key), min_bytes, max_bytes);
}

std::optional<double> ObjectReader::opt_number(std::string_view key, double lo, double hi, bool lo_open) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  const std::string expected = lo_open ? "a number above " + number_text(lo) + " and at most " + number_text(hi)
                                       : "a number from " + number_text(lo) + " to " + number_text(hi);
  if (!v->is_number()) fail_invalid(path(key), expected, *v);
  const double d = v->get<double>();
  if (!std::isfinite(d) || d > hi || (lo_open ? !(d > lo) : !(d >= lo))) fail_invalid(path(key), expected, *v);
  return d;
}

std::optional<int64_t> ObjectReader::opt_integer(std::string_view key, int64_t lo, int64_t hi) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  const std::string expected = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (!v->is_number_integer()) fail_invalid(path(key), expected, *v);
  int64_t n = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) fail_invalid(path(key), expected, *v);
    n = int64_t(u);
  } else {
    n = v->get<int64_t>();
  }
  if (n < lo || n > hi) fail_invalid(path(key), expected, *v);
  return n;
}

std::optional<uint64_t> ObjectReader::opt_unsigned(std::string_view key) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  const char* expected = "an integer from 0 to 18446744073709551615";
  if (v->is_number_unsigned()) return v->get<uint64_t>();
  if (v->is_number_integer() && v->get<int64_t>() >= 0) return uint64_t(v->get<int64_t>());
  fail_invalid(path(key), expected, *v);
}

const Json& ObjectReader::object(std::string_view key) const {
  const Json* v = find(key);
  if (!v) fail_missing(path(key), "an object");
  return read_object(*v, path(key));
}

const Json* ObjectReader::opt_object(std::string_view key) const {
  const Json* v = find(key);
  if (!v) return nullptr;
  return &read_object(*v, path(key));
}

const Json* ObjectReader::opt_array(std::string_view key, size_t min_items, size_t max_items) const {
  const Json* v = find(key);
  if (!v) return nullptr;
  const std::string expected = min_items ? "an array of " + std::to_string(min_items) + " to " +
                                               std::to_string(max_items) + " items"
                                         : "an array of at most " + std::to_string(max_items) + " items";
  if (!v->is_array() || v->size() < min_items || v->size() > max_items) fail_invalid(path(key), expected, *v);
  return v;
}

}  // namespace mnemo::daemon::protocol::detail
