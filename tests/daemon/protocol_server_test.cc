#include <gtest/gtest.h>

#include <string>

#include "daemon/protocol/client_events.h"
#include "daemon/protocol/server_events.h"

namespace mnemo::daemon::protocol {
namespace {

TEST(ProtocolServer, EventIdOnlyWhenGiven) {
  EXPECT_EQ(to_json(Pong{}), R"({"type":"pong"})");
  EXPECT_EQ(to_json(Pong{"e1"}), R"({"type":"pong","event_id":"e1"})");
  EXPECT_EQ(to_json(ResponseDelta{"r", "hi"}), R"({"type":"response.delta","response_id":"r","delta":"hi"})");
}

TEST(ProtocolServer, ErrorEventFromAParseFailure) {
  try {
    parse_client_event(R"({"type":"session.get","event_id":"e4"})");
    FAIL();
  } catch (const ProtocolError& e) {
    EXPECT_EQ(to_json(error_event(e)),
              R"({"type":"error","event_id":"e4","code":"missing_field",)"
              R"x("message":"session_id is required (a string of 1 to 128 bytes)","field":"session_id"})x");
  }
  EXPECT_EQ(to_json(ErrorEvent{std::nullopt, ErrorCode::Busy, "session s is generating", ""}),
            R"({"type":"error","code":"busy","message":"session s is generating"})");
}

TEST(ProtocolServer, UnstoredMessageHasNoIndex) {
  ResponseDone d;
  d.response_id = "r";
  d.session_id = "s";
  d.finish_reason = FinishReason::Cancelled;
  d.message.role = Role::Assistant;
  d.message.content = "par";
  d.message.created_at = 5;
  const Json j = to_json_value(d);
  EXPECT_FALSE(j["message"].contains("index"));
  EXPECT_FALSE(j.contains("error"));
  EXPECT_EQ(j["finish_reason"], "cancelled");
  EXPECT_FALSE(stores_message(FinishReason::Cancelled));
  EXPECT_FALSE(stores_message(FinishReason::Shutdown));
  EXPECT_FALSE(stores_message(FinishReason::Error));
  EXPECT_TRUE(stores_message(FinishReason::Length));
}

TEST(ProtocolServer, FinishReasonsAndStatusNames) {
  EXPECT_EQ(to_string(FinishReason::ToolCalls), "tool_calls");
  EXPECT_EQ(to_string(FinishReason::Shutdown), "shutdown");
  EXPECT_EQ(to_string(ToolStatus::Error), "error");
  for (int c = 0; c <= int(ErrorCode::Internal); ++c)
    EXPECT_EQ(error_code_from_string(to_string(ErrorCode(c))), ErrorCode(c));
  EXPECT_FALSE(error_code_from_string("nope"));
}

TEST(ProtocolServer, OptionalFieldsAreLeftOut) {
  EXPECT_EQ(to_json(ProgramBegun{"e", "p", std::nullopt, 7}),
            R"({"type":"program.begun","event_id":"e","program_id":"p","started_at":7})");
  Message m;
  m.role = Role::Tool;  // a tool message always shows tool_call_id
  m.content = "r";
  EXPECT_EQ(to_json_value(m).dump(), R"({"role":"tool","content":"r","tool_call_id":"","created_at":0})");
  Session s;
  s.id = "x";
  s.metadata = nullptr;  // never sent as null
  EXPECT_EQ(to_json_value(s)["metadata"], Json::object());
  EXPECT_EQ(to_json_value(s)["sampling"], Json::object());
}

TEST(ProtocolServer, InvalidUtf8IsReplacedNotThrown) {
  std::string out;
  EXPECT_NO_THROW(out = to_json(ResponseDelta{"r", "ok \xff\xfe"}));
  EXPECT_EQ(Json::parse(out)["delta"], "ok \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(ProtocolServer, SessionReadsBackThroughSessionCreate) {
  // What a client gets as a session, sent back as session.create, gives the
  // same settings: the SDKs can copy sessions.
  Session s;
  s.id = "sess_1";
  s.system = "sys";
  s.sampling.top_k = 5;
  s.sampling.stop = std::vector<std::string>{"a", "b"};
  s.tools = {ToolDef{"f", std::nullopt, Json::parse(R"({"type":"object"})")}};
  s.metadata = Json::parse(R"({"z":1,"a":2})");
  Json create = to_json_value(s);
  create["type"] = "session.create";
  const auto c = std::get<SessionCreate>(parse_client_event(create.dump()));
  EXPECT_EQ(c.system, s.system);
  EXPECT_EQ(c.sampling, s.sampling);
  EXPECT_EQ(c.tools, s.tools);
  EXPECT_EQ(c.metadata, s.metadata);
}

TEST(ProtocolServer, TypeNames) {
  EXPECT_EQ(type_name(ServerEvent{ToolEnded{}}), "tool.ended");
  EXPECT_EQ(type_name(ServerEvent{ErrorEvent{}}), "error");
  EXPECT_EQ(server_event_types().size(), std::variant_size_v<ServerEvent>);
  // Only the daemon's reports of the tools it runs share names with the
  // client's reports of its own: they say the same thing, from the other side.
  std::vector<std::string_view> shared;
  for (size_t i = 0; i < client_event_types().size(); ++i)
    for (auto s : server_event_types())
      if (client_event_types()[i] == s) shared.push_back(s);
  EXPECT_EQ(shared, (std::vector<std::string_view>{"tool.start", "tool.end"}));
}

}  // namespace
}  // namespace mnemo::daemon::protocol
