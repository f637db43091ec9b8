#include "daemon/net/error_body.h"

#include <cstdio>

namespace mnemo::daemon::net {
namespace {

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
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
