#include "plugins/mcp/jsonrpc.h"

#include <gtest/gtest.h>

namespace mnemo::plugins::mcp {
namespace {

TEST(McpJsonRpc, ClassifiesRequestNotificationResultError) {
  auto r = parse_line(R"({"jsonrpc":"2.0","id":7,"method":"ping"})");
  EXPECT_EQ(r.kind, MessageKind::Request);
  EXPECT_EQ(r.id, 7);
  EXPECT_EQ(r.method, "ping");
  EXPECT_TRUE(r.params.is_null());

  auto n = parse_line(R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{}})");
  EXPECT_EQ(n.kind, MessageKind::Notification);
  EXPECT_EQ(n.method, "notifications/tools/list_changed");
  EXPECT_TRUE(n.params.is_object());

  auto ok = parse_line(R"({"jsonrpc":"2.0","id":"a-1","result":{"tools":[]}})");
  EXPECT_EQ(ok.kind, MessageKind::Result);
  EXPECT_EQ(ok.id, "a-1");
  EXPECT_TRUE(ok.result.contains("tools"));

  auto err = parse_line(R"({"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope","data":[1]}})");
  EXPECT_EQ(err.kind, MessageKind::Error);
  EXPECT_EQ(err.error_code, kMethodNotFound);
  EXPECT_EQ(err.error_message, "nope");
  EXPECT_EQ(err.error_data, Json::array({1}));

  // A parse error answered before any id could be read names no request.
  auto anon = parse_line(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}})");
  EXPECT_EQ(anon.kind, MessageKind::Error);
  EXPECT_TRUE(anon.id.is_null());
}

TEST(McpJsonRpc, ResultMayBeAnyJsonValue) {
  EXPECT_EQ(parse_line(R"({"jsonrpc":"2.0","id":1,"result":null})").kind, MessageKind::Result);
  EXPECT_EQ(parse_line(R"({"jsonrpc":"2.0","id":1,"result":{}})").result, Json::object());
}

void expect_rejected(const std::string& line, const std::string& says) {
  try {
    parse_line(line);
    ADD_FAILURE() << "accepted: " << line;
  } catch (const ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what() << " (wanted '" << says << "')";
  }
}

TEST(McpJsonRpc, RejectsMalformedMessagesSayingWhy) {
  expect_rejected("this is not json", "not JSON");
  expect_rejected(R"({"jsonrpc":"2.0","id":1,"result":{})", "not JSON");  // cut short
  expect_rejected(R"([{"jsonrpc":"2.0","method":"x"}])", "batches");
  expect_rejected(R"("hello")", "expected an object");
  expect_rejected(R"({"id":1,"result":{}})", "'jsonrpc'");
  expect_rejected(R"({"jsonrpc":"1.0","id":1,"result":{}})", "'jsonrpc'");
  expect_rejected(R"({"jsonrpc":2.0,"id":1,"result":{}})", "'jsonrpc'");
  expect_rejected(R"({"jsonrpc":"2.0","id":1.5,"method":"x"})", "request 'id'");
  expect_rejected(R"({"jsonrpc":"2.0","id":null,"method":"x"})", "request 'id'");
  expect_rejected(R"({"jsonrpc":"2.0","id":{"a":1},"result":{}})", "response 'id'");
  expect_rejected(R"({"jsonrpc":"2.0","id":[1],"error":{"code":1,"message":"m"}})", "error 'id'");
  expect_rejected(R"({"jsonrpc":"2.0","method":""})", "'method'");
  expect_rejected(R"({"jsonrpc":"2.0","method":5})", "'method'");
  expect_rejected(R"({"jsonrpc":"2.0","method":"x","params":3})", "'params'");
  expect_rejected(R"({"jsonrpc":"2.0","id":1,"method":"x","result":{}})", "cannot carry");
  expect_rejected(R"({"jsonrpc":"2.0","id":1})", "exactly one");
  expect_rejected(R"({"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}})", "exactly one");
  expect_rejected(R"({"jsonrpc":"2.0","result":{}})", "needs an 'id'");
  expect_rejected(R"({"jsonrpc":"2.0","id":1,"error":"boom"})", "'error' must be");
  expect_rejected(R"({"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}})", "'error.code'");
  expect_rejected(R"({"jsonrpc":"2.0","id":1,"error":{"code":1}})", "'error.message'");
}

TEST(McpJsonRpc, BuildsMessagesThatClassifyBack) {
  auto req = make_request(4, "tools/call", Json{{"name", "echo"}, {"arguments", {{"message", "hi"}}}});
  EXPECT_EQ(req["jsonrpc"], "2.0");
  auto back = classify(req);
  EXPECT_EQ(back.kind, MessageKind::Request);
  EXPECT_EQ(back.params["arguments"]["message"], "hi");

  EXPECT_FALSE(make_request(1, "tools/list").contains("params"));
  EXPECT_FALSE(make_notification("notifications/initialized").contains("params"));
  EXPECT_EQ(classify(make_notification("notifications/cancelled", Json{{"requestId", 4}})).kind,
            MessageKind::Notification);
  EXPECT_EQ(classify(make_result("x", Json::object())).kind, MessageKind::Result);
  auto e = classify(make_error(9, kMethodNotFound, "Method not found"));
  EXPECT_EQ(e.kind, MessageKind::Error);
  EXPECT_EQ(e.error_code, -32601);
}

TEST(McpJsonRpc, LinesAreSingleLineEvenWithNewlinesAndBadUtf8) {
  auto line = to_line(make_request(1, "tools/call", Json{{"text", "a\nb\r\nc"}, {"bad", std::string("\xff\xfe")}}));
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto back = parse_line(std::string_view(line).substr(0, line.size() - 1));
  EXPECT_EQ(back.params["text"], "a\nb\r\nc");
}

TEST(McpJsonRpc, IdTextIsBounded) {
  EXPECT_EQ(id_text(12), "12");
  EXPECT_EQ(id_text("ab"), "\"ab\"");
  EXPECT_LE(id_text(std::string(500, 'x')).size(), 70u);
}

// Found by fuzzing: a number too large for any type threw out_of_range, not
// a parse error, and deep nesting would recurse without bound.
TEST(JsonRpc, HugeNumbersAndDeepNestingAreProtocolErrors) {
  const std::string huge = R"({"jsonrpc":"2.0","id":1,"result":{"n":)" + std::string(400, '9') + "}}";
  EXPECT_THROW(parse_line(huge), ProtocolError);
  const std::string deep = R"({"jsonrpc":"2.0","id":1,"result":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  try {
    parse_line(deep);
    FAIL() << "accepted 100,000 levels";
  } catch (const ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than 64"), std::string::npos) << e.what();
  }
  // Brackets inside strings are text, not nesting.
  const std::string text = R"({"jsonrpc":"2.0","id":1,"result":{"t":")" + std::string(1000, '[') + R"("}})";
  EXPECT_EQ(parse_line(text).kind, MessageKind::Result);
}

}  // namespace
}  // namespace mnemo::plugins::mcp
