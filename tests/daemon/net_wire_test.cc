// The Beast-free pieces of daemon/net: response bytes, chunk framing, auth, routing, error
// bodies.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "daemon/net/auth.h"
#include "daemon/net/error_body.h"
#include "daemon/net/http_message.h"
#include "daemon/net/http_wire.h"
#include "daemon/net/routing.h"

namespace mnemo::daemon::net {
namespace {

TEST(NetWire, WholeResponseHasLengthAndConnection) {
  HttpResponse r;
  r.status = 404;
  r.body = "{}";
  r.headers = {{"X-Request-Id", "abc"}};
  const std::string keep = serialize_response(r, true);
  EXPECT_EQ(keep.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << keep;
  EXPECT_NE(keep.find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(keep.find("X-Request-Id: abc\r\n"), std::string::npos);
  EXPECT_NE(keep.find("Content-Length: 2\r\n"), std::string::npos);
  EXPECT_NE(keep.find("Connection: keep-alive\r\n\r\n{}"), std::string::npos);
  EXPECT_NE(serialize_response(r, false).find("Connection: close\r\n\r\n"), std::string::npos);
}

TEST(NetWire, HeadersCannotInjectOrOverrideFraming) {
  HttpResponse r;
  r.body = "x";
  r.headers = {{"X-Evil", "a\r\nSet-Cookie: b"},
               {"Content-Length", "999"},
               {"Transfer-Encoding", "chunked"},
               {"X-Fine", "ok"}};
  const std::string s = serialize_response(r, true);
  EXPECT_EQ(s.find("Set-Cookie"), std::string::npos);
  EXPECT_EQ(s.find("999"), std::string::npos);
  EXPECT_EQ(s.find("chunked"), std::string::npos);
  EXPECT_NE(s.find("X-Fine: ok\r\n"), std::string::npos);
}

TEST(NetWire, OutOfRangeStatusBecomes500) {
  HttpResponse r;
  r.status = 42;
  EXPECT_EQ(serialize_response(r, true).rfind("HTTP/1.1 500 Internal Server Error\r\n", 0), 0u);
}

TEST(NetWire, StreamHeadAndChunks) {
  const std::string head = serialize_stream_head(200, "text/event-stream", true);
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_NE(head.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(head.find("Content-Length"), std::string::npos);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
  EXPECT_EQ(frame_chunk("hello"), "5\r\nhello\r\n");
  EXPECT_EQ(frame_chunk(std::string(26, 'a')), "1a\r\n" + std::string(26, 'a') + "\r\n");
  EXPECT_EQ(frame_chunk(""), "");  // an empty chunk would terminate the stream
  EXPECT_EQ(kLastChunk, "0\r\n\r\n");
}

TEST(NetWire, ReasonPhrasesAndCaseInsensitiveCompare) {
  EXPECT_EQ(reason_phrase(413), "Content Too Large");
  EXPECT_EQ(reason_phrase(426), "Upgrade Required");
  EXPECT_EQ(reason_phrase(299), "Unknown");
  EXPECT_TRUE(iequals("Content-Type", "content-TYPE"));
  EXPECT_FALSE(iequals("Content-Type", "Content-Typ"));
}

TEST(NetWire, WantsCloseReadsConnectionHeader) {
  HttpResponse r;
  EXPECT_FALSE(wants_close(r));
  r.headers = {{"Connection", "Close"}};
  EXPECT_TRUE(wants_close(r));
}

TEST(NetAuth, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secret2"));
  EXPECT_FALSE(constant_time_equal("secret", "secre"));
  EXPECT_FALSE(constant_time_equal("secret", ""));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
  // A given key that repeats the expected one must not match by wrapping around.
  EXPECT_FALSE(constant_time_equal("abab", "ab"));
}

TEST(NetAuth, BearerHeader) {
  EXPECT_TRUE(bearer_matches("Bearer k-123", "k-123"));
  EXPECT_TRUE(bearer_matches("bearer k-123", "k-123"));
  EXPECT_TRUE(bearer_matches("Bearer  k-123 ", "k-123"));
  EXPECT_FALSE(bearer_matches("Bearer k-124", "k-123"));
  EXPECT_FALSE(bearer_matches("Basic k-123", "k-123"));
  EXPECT_FALSE(bearer_matches("k-123", "k-123"));
  EXPECT_FALSE(bearer_matches("", "k-123"));
  EXPECT_FALSE(bearer_matches("Bearer ", ""));
}

TEST(NetErrorBody, OpenAiShapeWithEscaping) {
  const auto j = nlohmann::json::parse(
      openai_error_json("bad \"key\"\n\x01", "invalid_request_error", "invalid_api_key"));
  EXPECT_EQ(j["error"]["message"], "bad \"key\"\n\x01");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["code"], "invalid_api_key");
  EXPECT_TRUE(j["error"]["param"].is_null());
  const HttpResponse r = error_response(413, "too big");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_TRUE(nlohmann::json::parse(r.body)["error"]["code"].is_null());
}

TEST(NetErrorBody, InvalidUtf8BecomesReplacementCharacters) {
  // Clients put any bytes in paths and fields that messages quote.
  const std::string bad = std::string("no route /a\xff\xfe/") +
                          "\xc0\xaf"          // overlong '/'
                          "\xed\xa0\x80"      // a UTF-16 surrogate
                          "\xf4\x90\x80\x80"  // above U+10FFFF
                          "\xe2\x82";         // truncated
  const std::string body = openai_error_json(bad, "invalid_request_error", "not_found");
  const auto j = nlohmann::json::parse(body);  // throws on invalid UTF-8
  const std::string message = j["error"]["message"];
  EXPECT_EQ(message.rfind("no route /a\uFFFD\uFFFD/", 0), 0u) << message;
  EXPECT_EQ(message.find('\xff'), std::string::npos);
  EXPECT_NO_THROW((void)j.dump());  // strict serialisers accept it too
  // Well-formed multi-byte text is kept as it is.
  const std::string good = "caf\u00e9 \u4e2d\u6587 \U0001F600";
  EXPECT_EQ(nlohmann::json::parse(openai_error_json(good, "t", ""))["error"]["message"], good);
}

TEST(NetHttpRequest, HeaderLookupAndPath) {
  HttpRequest r;
  r.target = "/v1/models?x=1&y=2";
  r.headers = {{"authorization", "Bearer a"}, {"x-two", "1"}, {"x-two", "2"}};
  EXPECT_EQ(r.path(), "/v1/models");
  EXPECT_EQ(r.header("Authorization"), "Bearer a");
  EXPECT_EQ(r.header("X-Two"), "1");
  EXPECT_EQ(r.header("missing"), "");
  r.target = "/healthz";
  EXPECT_EQ(r.path(), "/healthz");
}

TEST(NetRouting, WithoutKey) {
  ServerOptions o;
  EXPECT_EQ(route_request("/v1/models", false, "", o), Route::kHandler);
  EXPECT_EQ(route_request("/v1/ws", true, "", o), Route::kWebSocket);
  EXPECT_EQ(route_request("/v1/ws", false, "", o), Route::kUpgradeRequired);
  EXPECT_EQ(route_request("/v1/other", true, "", o), Route::kNoSuchSocket);
}

TEST(NetRouting, WithKey) {
  ServerOptions o;
  o.api_key = "k";
  EXPECT_EQ(route_request("/v1/models", false, "", o), Route::kUnauthorized);
  EXPECT_EQ(route_request("/v1/models", false, "Bearer x", o), Route::kUnauthorized);
  EXPECT_EQ(route_request("/v1/models", false, "Bearer k", o), Route::kHandler);
  EXPECT_EQ(route_request("/healthz", false, "", o), Route::kHandler);
  EXPECT_EQ(route_request("/healthz/x", false, "", o), Route::kUnauthorized);
  EXPECT_EQ(route_request("/v1/ws", true, "", o), Route::kUnauthorized);
  EXPECT_EQ(route_request("/v1/ws", true, "Bearer k", o), Route::kWebSocket);
  // Where a socket does not exist says so whatever the credentials.
  EXPECT_EQ(route_request("/nope", true, "", o), Route::kNoSuchSocket);
}

TEST(NetRouting, ErrorAnswers) {
  const HttpResponse unauthorized = route_error(Route::kUnauthorized, "/x");
  EXPECT_EQ(unauthorized.status, 401);
  const auto j = nlohmann::json::parse(unauthorized.body);
  EXPECT_EQ(j["error"]["code"], "invalid_api_key");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(route_error(Route::kUpgradeRequired, "/v1/ws").status, 426);
  const HttpResponse missing = route_error(Route::kNoSuchSocket, "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("/nope"), std::string::npos);
}

}  // namespace
}  // namespace mnemo::daemon::net
