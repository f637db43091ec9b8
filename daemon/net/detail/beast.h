#pragma once
// The only header that pulls in Boost.Beast; included by the three session/server sources.

#include <utility>  // before Asio, for GCC 12 with Boost 1.74

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "daemon/net/detail/context.h"

namespace mnemo::daemon::net::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = beast::error_code;
using HttpRequestMessage = http::request<http::string_body>;

// A freshly accepted socket (already on its own strand) becomes an HTTP session.
void start_http_session(Context& ctx, tcp::socket socket);

// An upgrade request that passed routing and auth becomes a WebSocket session under the same
// connection id, replacing the HTTP session in the registry; it keeps the request's slot.
void start_ws_session(Context& ctx, uint64_t id, tcp::socket socket,
                      HttpRequestMessage request, Slot slot);

}  // namespace mnemo::daemon::net::detail
