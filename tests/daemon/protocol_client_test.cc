#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "daemon/protocol/client_events.h"

namespace mnemo::daemon::protocol {
namespace {

ProtocolError error_of(std::string_view text, const ParseOptions& o = {}) {
  try {
    parse_client_event(text, o);
  } catch (const ProtocolError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << text;
  return ProtocolError(ErrorCode::Internal, "accepted");
}

template <class T>
T parse_as(std::string_view text) {
  const ClientEvent e = parse_client_event(text);
  EXPECT_TRUE(std::holds_alternative<T>(e)) << text;
  return std::get<T>(e);
}

TEST(ProtocolClient, MinimalEventsTakeTheirDefaults) {
  const auto c = parse_as<SessionCreate>(R"({"type":"session.create"})");
  EXPECT_FALSE(c.event_id);
  EXPECT_EQ(c.system, "");
  EXPECT_EQ(c.sampling, Sampling{});
  EXPECT_TRUE(c.tools.empty());
  EXPECT_EQ(c.metadata, Json::object());

  const auto l = parse_as<SessionList>(R"({"type":"session.list"})");
  EXPECT_EQ(l.limit, 100);
  EXPECT_FALSE(l.after);

  const auto r = parse_as<ResponseCreate>(R"({"type":"response.create","session_id":"s"})");
  EXPECT_FALSE(r.tool_choice);
  EXPECT_FALSE(r.program_id);

  const auto b = parse_as<ProgramBegin>(R"({"type":"program.begin"})");
  EXPECT_FALSE(b.program_id);
  EXPECT_FALSE(b.session_id);

  const auto t = parse_as<ToolEnd>(R"({"type":"tool.end","call_id":"c"})");
  EXPECT_EQ(t.status, ToolStatus::Ok);
  EXPECT_FALSE(t.result);

  EXPECT_EQ(parse_as<Ping>(R"({"type":"ping","event_id":"p"})").event_id, "p");
}

TEST(ProtocolClient, NullCountsAsAbsentAndUnknownFieldsAreIgnored) {
  const auto c = parse_as<SessionCreate>(
      R"({"type":"session.create","system":null,"sampling":null,"tools":null,"metadata":null,"future":{"x":[1]}})");
  EXPECT_EQ(c.system, "");
  EXPECT_TRUE(c.tools.empty());
  const auto s = parse_as<SessionCreate>(R"({"type":"session.create","sampling":{"temperature":null,"warp":9}})");
  EXPECT_FALSE(s.sampling.temperature);
  EXPECT_EQ(parse_as<ResponseCreate>(R"({"type":"response.create","session_id":"s","event_id":null})").event_id,
            std::nullopt);
}

TEST(ProtocolClient, SamplingFieldsAndBounds) {
  const auto c = parse_as<SessionCreate>(
      R"({"type":"session.create","sampling":{"temperature":0,"top_p":1,"top_k":0,"min_p":1,
          "repetition_penalty":10,"max_tokens":1,"seed":18446744073709551615,"stop":"END"}})");
  EXPECT_EQ(c.sampling.temperature, 0.0);
  EXPECT_EQ(c.sampling.top_p, 1.0);
  EXPECT_EQ(c.sampling.top_k, 0);
  EXPECT_EQ(c.sampling.min_p, 1.0);
  EXPECT_EQ(c.sampling.repetition_penalty, 10.0);
  EXPECT_EQ(c.sampling.max_tokens, 1);
  EXPECT_EQ(c.sampling.seed, 18446744073709551615ull);
  EXPECT_EQ(c.sampling.stop, std::vector<std::string>{"END"});

  struct Bad {
    const char* sampling;
    const char* field;
  };
  for (const Bad& b : std::vector<Bad>{{R"({"temperature":2.0001})", "sampling.temperature"},
                                       {R"({"temperature":-1})", "sampling.temperature"},
                                       {R"({"top_p":1.5})", "sampling.top_p"},
                                       {R"({"top_k":-1})", "sampling.top_k"},
                                       {R"({"top_k":2.5})", "sampling.top_k"},
                                       {R"({"min_p":true})", "sampling.min_p"},
                                       {R"({"repetition_penalty":0})", "sampling.repetition_penalty"},
                                       {R"({"max_tokens":0})", "sampling.max_tokens"},
                                       {R"({"max_tokens":18446744073709551615})", "sampling.max_tokens"},
                                       {R"({"seed":-1})", "sampling.seed"},
                                       {R"({"seed":"7"})", "sampling.seed"},
                                       {R"({"stop":""})", "sampling.stop"},
                                       {R"({"stop":{}})", "sampling.stop"},
                                       {R"({"stop":["a",""]})", "sampling.stop[1]"},
                                       {R"({"stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]})",
                                        "sampling.stop"}}) {
    const ProtocolError e = error_of(std::string(R"({"type":"session.create","sampling":)") + b.sampling + "}");
    EXPECT_EQ(e.code(), ErrorCode::InvalidField) << b.sampling;
    EXPECT_EQ(e.field(), b.field) << b.sampling;
  }
  const ProtocolError e = error_of(R"({"type":"session.create","sampling":[]})");
  EXPECT_EQ(e.field(), "sampling");
  EXPECT_EQ(std::string(e.what()), "sampling: expected an object, got an array of 0 items");
}

TEST(ProtocolClient, SamplingMergeLayersFieldByField) {
  Sampling session;
  session.temperature = 0.2;
  session.max_tokens = 100;
  session.stop = std::vector<std::string>{"x"};
  Sampling response;
  response.max_tokens = 5;
  response.seed = 3;
  const Sampling m = merge(session, response);
  EXPECT_EQ(m.temperature, 0.2);
  EXPECT_EQ(m.max_tokens, 5);
  EXPECT_EQ(m.seed, 3u);
  EXPECT_EQ(m.stop, std::vector<std::string>{"x"});
  EXPECT_FALSE(m.top_p);
}

TEST(ProtocolClient, ToolsAreCheckedAndKeepSchemaKeyOrder) {
  const auto c = parse_as<SessionCreate>(
      R"({"type":"session.create","tools":[{"type":"function","function":{"name":"z_tool-2",
          "parameters":{"type":"object","properties":{"zeta":{},"alpha":{}}}}}]})");
  ASSERT_EQ(c.tools.size(), 1u);
  EXPECT_FALSE(c.tools[0].description);
  std::vector<std::string> keys;
  for (auto& [k, v] : (*c.tools[0].parameters)["properties"].items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"zeta", "alpha"}));

  auto field_of = [](const std::string& tools) {
    return error_of(R"({"type":"session.create","tools":)" + tools + "}").field();
  };
  EXPECT_EQ(field_of(R"({})"), "tools");
  EXPECT_EQ(field_of(R"([1])"), "tools[0]");
  EXPECT_EQ(field_of(R"([{"function":{"name":"f"}}])"), "tools[0].type");
  EXPECT_EQ(field_of(R"([{"type":"function"}])"), "tools[0].function");
  EXPECT_EQ(field_of(R"([{"type":"function","function":{"name":""}}])"), "tools[0].function.name");
  EXPECT_EQ(field_of(R"([{"type":"function","function":{"name":"a.b"}}])"), "tools[0].function.name");
  EXPECT_EQ(field_of(R"([{"type":"function","function":{"name":"f","parameters":"{}"}}])"),
            "tools[0].function.parameters");
  EXPECT_EQ(field_of(R"([{"type":"function","function":{"name":"f","description":3}}])"),
            "tools[0].function.description");
  EXPECT_EQ(field_of(R"([{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}])"),
            "tools[1].function.name");
  EXPECT_EQ(field_of(std::string(R"([{"type":"function","function":{"name":")") + std::string(65, 'a') + "\"}}]"),
            "tools[0].function.name");
  std::string many = "[";
  for (int i = 0; i < 129; ++i) many += std::string(i ? "," : "") + R"({"type":"function","function":{"name":"f)" +
                                       std::to_string(i) + "\"}}";
  EXPECT_EQ(field_of(many + "]"), "tools");
}

TEST(ProtocolClient, MetadataIsABoundedObject) {
  const auto b = parse_as<ProgramBegin>(R"({"type":"program.begin","metadata":{"b":1,"a":[true]}})");
  EXPECT_EQ(b.metadata.dump(), R"({"b":1,"a":[true]})");
  const std::string big = R"({"type":"session.create","metadata":{"k":")" + std::string(16384, 'x') + "\"}}";
  EXPECT_EQ(error_of(big).field(), "metadata");
  EXPECT_EQ(error_of(R"({"type":"program.begin","metadata":"x"})").field(), "metadata");
}

TEST(ProtocolClient, MessageRules) {
  const auto one = parse_as<MessageAppend>(
      R"({"type":"message.append","session_id":"s","message":{"role":"system","content":"be brief","name":"ops",
          "index":99,"created_at":5}})");
  ASSERT_EQ(one.messages.size(), 1u);
  EXPECT_EQ(one.messages[0].role, Role::System);
  EXPECT_EQ(one.messages[0].name, "ops");
  EXPECT_FALSE(one.messages[0].index);  // the server assigns these
  EXPECT_EQ(one.messages[0].created_at, 0);

  const auto call = parse_as<MessageAppend>(
      R"({"type":"message.append","session_id":"s","messages":[{"role":"assistant","content":null,
          "tool_calls":[{"id":"c1","name":"f"}]}]})");
  EXPECT_EQ(call.messages[0].content, "");
  EXPECT_EQ(call.messages[0].tool_calls[0].arguments, Json::object());

  auto field_of = [](const std::string& msg) {
    return error_of(R"({"type":"message.append","session_id":"s","message":)" + msg + "}");
  };
  EXPECT_EQ(field_of(R"("hi")").field(), "message");
  EXPECT_EQ(field_of(R"({"content":"a"})").field(), "message.role");
  EXPECT_EQ(field_of(R"({"content":"a"})").code(), ErrorCode::MissingField);
  EXPECT_EQ(field_of(R"({"role":"user","content":5})").field(), "message.content");
  EXPECT_EQ(field_of(R"({"role":"assistant"})").field(), "message.content");
  EXPECT_EQ(field_of(R"({"role":"assistant","tool_calls":[]})").code(), ErrorCode::MissingField);
  EXPECT_EQ(field_of(R"({"role":"user","content":"a","tool_calls":[{"id":"c","name":"f"}]})").field(),
            "message.tool_calls");
  EXPECT_EQ(field_of(R"({"role":"tool","content":"a","tool_call_id":""})").field(), "message.tool_call_id");
  EXPECT_EQ(field_of(R"({"role":"assistant","tool_calls":[{"name":"f"}]})").field(), "message.tool_calls[0].id");
  EXPECT_EQ(field_of(R"({"role":"user","content":"a","name":""})").field(), "message.name");

  const std::string both_none = R"({"type":"message.append","session_id":"s"})";
  EXPECT_EQ(error_of(both_none).code(), ErrorCode::MissingField);
  EXPECT_EQ(error_of(R"({"type":"message.append","session_id":"s","messages":[]})").field(), "messages");
  std::string many = R"({"type":"message.append","session_id":"s","messages":[)";
  for (int i = 0; i < 257; ++i) many += std::string(i ? "," : "") + R"({"role":"user","content":"x"})";
  EXPECT_EQ(error_of(many + "]}").field(), "messages");
}

TEST(ProtocolClient, ToolChoiceForms) {
  auto choice = [](const std::string& tc) {
    return *parse_as<ResponseCreate>(R"({"type":"response.create","session_id":"s","tool_choice":)" + tc + "}")
                .tool_choice;
  };
  EXPECT_EQ(choice(R"("none")").mode, ToolChoice::Mode::None);
  EXPECT_EQ(choice(R"("auto")").mode, ToolChoice::Mode::Auto);
  EXPECT_EQ(choice(R"("required")").mode, ToolChoice::Mode::Required);
  EXPECT_EQ(choice(R"({"type":"function","function":{"name":"f"}})"), (ToolChoice{ToolChoice::Mode::Function, "f"}));
  EXPECT_EQ(error_of(R"({"type":"response.create","session_id":"s","tool_choice":{"function":{"name":"f"}}})").field(),
            "tool_choice.type");
  EXPECT_EQ(error_of(R"({"type":"response.create","session_id":"s","tool_choice":3})").field(), "tool_choice");
}

TEST(ProtocolClient, IdsAreBounded) {
  const std::string id128(128, 'a');
  EXPECT_EQ(parse_as<SessionGet>(R"({"type":"session.get","session_id":")" + id128 + "\"}").session_id, id128);
  const ProtocolError e = error_of(R"({"type":"session.get","session_id":")" + id128 + "a\"}");
  EXPECT_EQ(e.field(), "session_id");
  EXPECT_EQ(std::string(e.what()), "session_id: expected a string of 1 to 128 bytes, got a string of 129 bytes");
  EXPECT_EQ(error_of(R"({"type":"session.get","session_id":""})").field(), "session_id");
  EXPECT_EQ(error_of(R"({"type":"tool.start","call_id":"c"})").field(), "name");
  EXPECT_EQ(error_of(R"({"type":"tool.start","call_id":"c","name":"n","arguments":[]})").field(), "arguments");
  EXPECT_EQ(error_of(R"({"type":"session.list","limit":1001})").field(), "limit");
  EXPECT_EQ(error_of(R"({"type":"session.list","after":7})").field(), "after");
}

TEST(ProtocolClient, SessionGetPages) {
  const SessionGet plain = parse_as<SessionGet>(R"({"type":"session.get","session_id":"s"})");
  EXPECT_EQ(plain.limit, kDefaultHistoryLimit);
  EXPECT_FALSE(plain.before);
  const SessionGet paged = parse_as<SessionGet>(R"({"type":"session.get","session_id":"s","limit":1000,"before":0})");
  EXPECT_EQ(paged.limit, 1000);
  EXPECT_EQ(paged.before, 0);
  EXPECT_FALSE(parse_as<SessionGet>(R"({"type":"session.get","session_id":"s","before":null})").before);
  EXPECT_EQ(parse_as<SessionGet>(R"({"type":"session.get","session_id":"s","before":9007199254740991})").before,
            kMaxMessageIndex);
  for (const char* bad : {R"("limit":0)", R"("limit":1001)", R"("limit":2.5)", R"("limit":"10")"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(error_of(std::string(R"({"type":"session.get","session_id":"s",)") + bad + "}").field(), "limit");
  }
  for (const char* bad : {R"("before":-1)", R"("before":9007199254740992)", R"("before":1.5)", R"("before":"3")"}) {
    SCOPED_TRACE(bad);
    const ProtocolError e = error_of(std::string(R"({"type":"session.get","session_id":"s",)") + bad + "}");
    EXPECT_EQ(e.code(), ErrorCode::InvalidField);
    EXPECT_EQ(e.field(), "before");
  }
}

TEST(ProtocolClient, EventIdIsEchoedInErrorsWhenReadable) {
  EXPECT_EQ(error_of(R"({"type":"session.get","event_id":"e9"})").event_id(), "e9");
  EXPECT_EQ(error_of(R"({"event_id":"e9","type":"nope"})").event_id(), "e9");
  EXPECT_EQ(error_of(R"({"event_id":"e9"})").event_id(), "e9");
  EXPECT_EQ(error_of(R"({"event_id":"e9","type":3})").event_id(), "e9");
  EXPECT_EQ(error_of(R"({"event_id":"e9","type":"session.create","tools":[{}]})").event_id(), "e9");
  // Not readable: the event_id itself is wrong, or the JSON is.
  const ProtocolError bad_id = error_of(R"({"event_id":"","type":"ping"})");
  EXPECT_EQ(bad_id.field(), "event_id");
  EXPECT_FALSE(bad_id.event_id());
  EXPECT_FALSE(error_of(R"({"event_id":"e9","type":"ping")").event_id());
  EXPECT_FALSE(error_of(R"({"event_id":)" + std::string("\"") + std::string(129, 'e') + "\"}").event_id());
}

TEST(ProtocolClient, ParsedEventsKeepTheirEventId) {
  const ClientEvent e = parse_client_event(R"({"type":"response.cancel","event_id":"x1","response_id":"r"})");
  EXPECT_EQ(type_name(e), "response.cancel");
  EXPECT_EQ(event_id_of(e), "x1");
  EXPECT_EQ(std::get<ResponseCancel>(e).response_id, "r");
}

TEST(ProtocolClient, FrameLevelErrors) {
  ParseOptions small;
  small.max_frame_bytes = 16;
  EXPECT_EQ(error_of(R"({"type":"ping","event_id":"e"})", small).code(), ErrorCode::FrameTooLarge);
  EXPECT_NO_THROW(parse_client_event(R"({"type":"ping"})", small));

  EXPECT_EQ(error_of("").code(), ErrorCode::InvalidJson);
  EXPECT_EQ(error_of("{\"type\":\"ping\"} x").code(), ErrorCode::InvalidJson);
  EXPECT_EQ(error_of("{\"type\":\"ping\",\"x\":\"\xff\"}").code(), ErrorCode::InvalidJson);  // not UTF-8
  EXPECT_EQ(error_of(R"({"type":"ping","x":1e400})").code(), ErrorCode::InvalidJson);
  EXPECT_EQ(error_of(R"("ping")").code(), ErrorCode::InvalidEvent);
  EXPECT_EQ(error_of("null").code(), ErrorCode::InvalidEvent);

  // Nesting: 64 levels are fine, 65 are refused before parsing; brackets
  // inside strings do not count.
  auto nested = [](int depth) {
    return R"({"type":"ping","x":)" + std::string(size_t(depth - 1), '[') + std::string(size_t(depth - 1), ']') + "}";
  };
  EXPECT_NO_THROW(parse_client_event(nested(64)));
  const ProtocolError deep = error_of(nested(65));
  EXPECT_EQ(deep.code(), ErrorCode::InvalidJson);
  EXPECT_NE(std::string(deep.what()).find("nested deeper than 64"), std::string::npos);
  EXPECT_EQ(error_of(std::string(100000, '[')).code(), ErrorCode::InvalidJson);
  EXPECT_NO_THROW(parse_client_event(R"({"type":"ping","x":")" + std::string(200, '[') + R"(\"[["})"));
}

TEST(ProtocolClient, ErrorMessagesNameFieldAndExpectation) {
  EXPECT_EQ(std::string(error_of(R"({"type":"session.get"})").what()),
            "session_id is required (a string of 1 to 128 bytes)");
  EXPECT_EQ(std::string(error_of(R"({"type":"session.explode"})").what()), "unknown event type \"session.explode\"");
  EXPECT_EQ(std::string(error_of(R"({"type":"tool.end","call_id":"c","status":"fine"})").what()),
            "status: expected \"ok\" or \"error\", got \"fine\"");
  EXPECT_EQ(std::string(error_of(R"({"type":"session.create","sampling":{"top_p":0}})").what()),
            "sampling.top_p: expected a number above 0 and at most 1, got 0");
}

// A cheap, deterministic stand-in for the fuzz target: every prefix and many
// one-byte corruptions of valid events either parse or throw ProtocolError.
TEST(ProtocolClient, CorruptedEventsOnlyEverThrowProtocolError) {
  const std::vector<std::string> seeds = {
      R"({"type":"session.create","event_id":"e","system":"s","sampling":{"temperature":0.5,"stop":["a"]},
          "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"metadata":{"k":1}})",
      R"({"type":"message.append","session_id":"s","messages":[{"role":"assistant","tool_calls":[{"id":"c","name":"f",
          "arguments":{"a":1}}]},{"role":"tool","tool_call_id":"c","content":"r"}]})",
      R"({"type":"response.create","session_id":"s","tool_choice":{"type":"function","function":{"name":"f"}}})",
      R"({"type":"tool.start","call_id":"c","name":"n","arguments":{"q":[1,2]}})",
  };
  const std::string noise = "\"{}[]:,0-\\\x01\xff" "a";
  size_t accepted = 0, refused = 0;
  for (const std::string& s : seeds) {
    for (size_t cut = 0; cut <= s.size(); ++cut) {
      try {
        parse_client_event(s.substr(0, cut));
        ++accepted;
      } catch (const ProtocolError& e) {
        EXPECT_NE(e.code(), ErrorCode::Internal) << e.what();
        ++refused;
      }
    }
    for (size_t i = 0; i < s.size(); ++i)
      for (char c : noise) {
        std::string m = s;
        m[i] = c;
        try {
          parse_client_event(m);
          ++accepted;
        } catch (const ProtocolError& e) {
          EXPECT_NE(e.code(), ErrorCode::Internal) << e.what() << "\n" << m;
          ++refused;
        }
      }
  }
  EXPECT_GT(accepted, 0u);
  EXPECT_GT(refused, 0u);
}

}  // namespace
}  // namespace mnemo::daemon::protocol
