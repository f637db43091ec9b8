#include "daemon/net/error_body.h"

#include <cstdio>

namespace mnemo::daemon::net {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 when it is not one.
size_t utf8_sequence(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if (c == 0xED) n = 3, hi = 0x9F;
  else if (c >= 0xE1 && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c == 0xF4) n = 4, hi = 0x8F;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else return 0;
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i)
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  return n;
}

// Messages quote what clients sent (paths, field names), which may be any bytes: invalid
// UTF-8 becomes U+FFFD so that the body is always JSON a strict parser accepts.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  while (!s.empty()) {
    const char c = s.front();
    const size_t n = utf8_sequence(s);
    if (n == 0) {
      out += "\ufffd";
      s.remove_prefix(1);
      continue;
    }
    if (n > 1) {
      out.append(s.data(), n);
      s.remove_prefix(n);
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
    s.remove_prefix(1);
  }
  out += '"';
}

}  // namespace

std::string openai_error_json(std::string_view message, std::string_view type,
                              std::string_view code) {
  std::string out = R"({"error":{"message":)";
  append_json_string(out, message);
  out += R"(,"type":)";
  append_json_string(out, type);
  out += R"(,"param":null,"code":)";
  if (code.empty())
    out += "null";
  else
    append_json_string(out, code);
  out += "}}";
  return out;
}

HttpResponse error_response(int status, std::string_view message, std::string_view type,
                            std::string_view code) {
  HttpResponse r;
  r.status = status;
  r.body = openai_error_json(message, type, code);
  return r;
}

}  // namespace mnemo::daemon::net
