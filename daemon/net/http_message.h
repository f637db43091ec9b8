#pragma once
// Plain HTTP request and response values exchanged between the network layer and the
// application; no Boost types cross this boundary.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mnemo::daemon::net {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercase

  // Value of the first header named `name` (any case), or "" when absent.
  std::string header(std::string_view name) const;
  // target without the query string.
  std::string path() const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra headers. Content-Length, Transfer-Encoding and Connection are set by the server;
  // "connection: close" here asks the server to close after this response.
  std::vector<std::pair<std::string, std::string>> headers;
};

}  // namespace mnemo::daemon::net
