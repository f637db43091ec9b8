#pragma once
// HTTP/1.1 response bytes written by the server: a whole response, or a chunked stream's
// head, chunks and terminator. Kept apart from Beast so that it is cheap to build and test.

#include <string>
#include <string_view>

#include "daemon/net/http_message.h"

namespace mnemo::daemon::net {

bool iequals(std::string_view a, std::string_view b);
std::string_view reason_phrase(int status);

// Whether the application asked to close the connection after `r`.
bool wants_close(const HttpResponse& r);

std::string serialize_response(const HttpResponse& r, bool keep_alive);
std::string serialize_stream_head(int status, std::string_view content_type, bool keep_alive);
std::string frame_chunk(std::string_view data);  // empty data frames nothing
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace mnemo::daemon::net
