#include "daemon/net/http_wire.h"

#include <array>
#include <cstdio>
#include <utility>

namespace mnemo::daemon::net {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// The server owns framing and connection management; the application may not override them.
bool reserved(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection") || iequals(name, "content-type");
}

void append_status_line(std::string& out, int status) {
  if (status < 100 || status > 599) status = 500;
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\nServer: mnemod\r\n";
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  // A CR or LF would let a value smuggle extra headers or a second response.
  if (name.empty() || has_crlf(name) || has_crlf(value)) return;
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view reason_phrase(int status) {
  static constexpr std::array<std::pair<int, std::string_view>, 24> kPhrases{{
      {100, "Continue"}, {101, "Switching Protocols"}, {200, "OK"}, {201, "Created"},
      {202, "Accepted"}, {204, "No Content"}, {400, "Bad Request"}, {401, "Unauthorized"},
      {403, "Forbidden"}, {404, "Not Found"}, {405, "Method Not Allowed"},
      {408, "Request Timeout"}, {409, "Conflict"}, {413, "Content Too Large"},
      {415, "Unsupported Media Type"}, {422, "Unprocessable Content"},
      {426, "Upgrade Required"}, {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"}, {500, "Internal Server Error"},
      {501, "Not Implemented"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
  }};
  for (const auto& [code, phrase] : kPhrases)
    if (code == status) return phrase;
  return "Unknown";
}

bool wants_close(const HttpResponse& r) {
  for (const auto& [k, v] : r.headers)
    if (iequals(k, "connection") && iequals(v, "close")) return true;
  return false;
}

std::string serialize_response(const HttpResponse& r, bool keep_alive) {
  std::string out;
  out.reserve(160 + r.body.size());
  append_status_line(out, r.status);
  if (!r.content_type.empty()) append_header(out, "Content-Type", r.content_type);
  for (const auto& [k, v] : r.headers)
    if (!reserved(k)) append_header(out, k, v);
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  out += r.body;
  return out;
}

std::string serialize_stream_head(int status, std::string_view content_type, bool keep_alive) {
  std::string out;
  append_status_line(out, status);
  if (!content_type.empty()) append_header(out, "Content-Type", content_type);
  // Proxies must not buffer or cache a token stream.
  out += "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return out;
}

std::string frame_chunk(std::string_view data) {
  if (data.empty()) return {};  // an empty chunk would end the stream
  char size[24];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out;
  out.reserve(static_cast<size_t>(n) + data.size() + 2);
  out.append(size, static_cast<size_t>(n));
  out += data;
  out += "\r\n";
  return out;
}

}  // namespace mnemo::daemon::net
