#include "daemon/net/routing.h"

#include <algorithm>
#include <string>

#include "daemon/net/auth.h"
#include "daemon/net/error_body.h"

namespace mnemo::daemon::net {

Route route_request(std::string_view path, bool wants_upgrade, std::string_view authorization,
                    const ServerOptions& options) {
  const bool authorized =
      options.api_key.empty() || bearer_matches(authorization, options.api_key);
  if (wants_upgrade) {
    const bool socket = path == options.ws_path ||
                        std::find(options.more_ws_paths.begin(), options.more_ws_paths.end(), path) !=
                            options.more_ws_paths.end();
    if (!socket) return Route::kNoSuchSocket;
    return authorized ? Route::kWebSocket : Route::kUnauthorized;
  }
  if (path == options.ws_path) return Route::kUpgradeRequired;
  // Health checks come from supervisors that hold no key.
  if (!authorized && path != "/healthz") return Route::kUnauthorized;
  return Route::kHandler;
}

HttpResponse route_error(Route route, std::string_view path) {
  switch (route) {
    case Route::kUnauthorized: {
      HttpResponse r = error_response(
          401, "Incorrect or missing API key: send the header 'Authorization: Bearer KEY'",
          "invalid_request_error", "invalid_api_key");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
    case Route::kUpgradeRequired: {
      HttpResponse r = error_response(426, "this endpoint speaks WebSocket: send an upgrade",
                                      "invalid_request_error", "upgrade_required");
      r.headers.emplace_back("Upgrade", "websocket");
      return r;
    }
    case Route::kNoSuchSocket:
      return error_response(404, "no WebSocket endpoint at " + std::string(path),
                            "invalid_request_error", "not_found");
    case Route::kHandler:
    case Route::kWebSocket:
      break;
  }
  return error_response(500, "no error for this route", "server_error");
}

}  // namespace mnemo::daemon::net
