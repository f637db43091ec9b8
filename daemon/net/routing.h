#pragma once
// Where a request goes, decided from its path, upgrade wish and credentials alone.

#include <string_view>

#include "daemon/net/http_message.h"
#include "daemon/net/server_options.h"

namespace mnemo::daemon::net {

enum class Route {
  kHandler,          // to the HttpHandler
  kWebSocket,        // upgrade to a WebSocket session
  kUnauthorized,     // 401
  kUpgradeRequired,  // 426: the WebSocket path without an upgrade
  kNoSuchSocket,     // 404: an upgrade anywhere else
};

Route route_request(std::string_view path, bool wants_upgrade, std::string_view authorization,
                    const ServerOptions& options);

// The server's own answer for every route but kHandler and kWebSocket.
HttpResponse route_error(Route route, std::string_view path);

}  // namespace mnemo::daemon::net
