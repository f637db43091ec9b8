// docs/protocol.md is the protocol's definition for the SDKs; this test
// keeps it and the code from drifting apart. Every JSON example of a client
// event must parse; every example of a server event must be exactly what
// the serialisers make from the same values (field order included); every
// row of the error table must produce its code and field.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/protocol/client_events.h"
#include "daemon/protocol/server_events.h"

namespace mnemo::daemon::protocol {
namespace {

struct Example {
  std::string section;  // "## ..." heading
  std::string heading;  // "### ..." heading
  int line = 0;
  Json value;
};

struct ErrorRow {
  std::string frame, code, field;
  int line = 0;
};

struct Doc {
  std::vector<Example> examples;
  std::vector<ErrorRow> error_rows;
};

std::string unquote_code(std::string cell) {
  while (!cell.empty() && cell.front() == ' ') cell.erase(cell.begin());
  while (!cell.empty() && cell.back() == ' ') cell.pop_back();
  if (cell.size() >= 2 && cell.front() == '`' && cell.back() == '`') cell = cell.substr(1, cell.size() - 2);
  return cell;
}

const Doc& doc() {
  static const Doc d = [] {
    Doc out;
    std::ifstream in(std::string(MNEMO_SOURCE_DIR) + "/docs/protocol.md");
    EXPECT_TRUE(in) << "docs/protocol.md not found";
    std::string line, section, heading, block;
    bool in_block = false;
    int n = 0, block_line = 0;
    while (std::getline(in, line)) {
      ++n;
      if (in_block) {
        if (line == "```") {
          in_block = false;
          Example ex{section, heading, block_line, {}};
          try {
            ex.value = Json::parse(block);
          } catch (const std::exception& e) {
            ADD_FAILURE() << "docs/protocol.md:" << block_line << ": example is not JSON: " << e.what();
            continue;
          }
          out.examples.push_back(std::move(ex));
        } else {
          block += line + "\n";
        }
        continue;
      }
      if (line == "```json") {
        in_block = true;
        block.clear();
        block_line = n;
      } else if (line.starts_with("## ")) {
        section = line.substr(3);
        heading.clear();
      } else if (line.starts_with("### ")) {
        heading = line.substr(4);
      } else if (section == "Error examples" && line.starts_with("| `")) {
        // | `frame` | `code` | `field` |
        std::string body = line.substr(1, line.size() - 2);
        std::vector<std::string> cells;
        size_t start = 0, bar;
        while ((bar = body.find(" | ", start)) != std::string::npos) {
          cells.push_back(body.substr(start, bar - start));
          start = bar + 3;
        }
        cells.push_back(body.substr(start));
        EXPECT_EQ(cells.size(), 3u) << "docs/protocol.md:" << n;
        if (cells.size() == 3)
          out.error_rows.push_back({unquote_code(cells[0]), unquote_code(cells[1]), unquote_code(cells[2]), n});
      }
    }
    EXPECT_FALSE(in_block) << "unterminated ```json block";
    return out;
  }();
  return d;
}

// The values the doc's examples use.
ToolDef weather_tool() {
  return {"get_weather", "Current weather for a city.",
          Json::parse(R"({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})")};
}

ToolCall weather_call() { return {"call_8f2k1", "get_weather", Json::parse(R"({"city": "Paris"})")}; }

Session full_session(int64_t updated_at, int64_t count) {
  Session s;
  s.id = "sess_01JD4W2Q8X5Y";
  s.created_at = 1767225600000;
  s.updated_at = updated_at;
  s.system = "You are a terse assistant.";
  s.sampling.temperature = 0.2;
  s.sampling.max_tokens = 512;
  s.tools = {weather_tool()};
  s.metadata = Json::parse(R"({"user": "ada"})");
  s.message_count = count;
  return s;
}

Session bare_session() {
  Session s;
  s.id = "sess_01JD4W2Q8X5Y";
  s.created_at = 1767225600000;
  s.updated_at = 1767225660000;
  s.message_count = 3;
  return s;
}

std::vector<Message> history() {
  Message user{Role::User, "What's the weather in Paris?", {}, "", "", 0, 1767225601000};
  Message call{Role::Assistant, "", {weather_call()}, "", "", 1, 1767225602000};
  Message result{Role::Tool, "{\"temp_c\": 18}", {}, "call_8f2k1", "get_weather", 2, 1767225660000};
  return {user, call, result};
}

// Every server event the doc shows, built through the serialisers' types.
std::vector<ServerEvent> server_examples() {
  const std::string sid = "sess_01JD4W2Q8X5Y";
  const std::string rid = "resp_01JD4W4K";
  std::vector<ServerEvent> out;
  out.push_back(SessionCreated{"evt_1", full_session(1767225600000, 0)});
  out.push_back(SessionResumed{"evt_2", bare_session()});
  out.push_back(SessionListed{"evt_3", {bare_session()}, false});
  out.push_back(SessionHistory{"evt_4", bare_session(), history()});
  out.push_back(SessionDeleted{"evt_5", sid});
  out.push_back(MessageAppended{"evt_6", sid, {0}, 1});
  out.push_back(ResponseCreated{"evt_8", rid, sid});
  out.push_back(ResponseDelta{rid, "It is 18"});
  out.push_back(ResponseToolCall{rid, weather_call()});
  out.push_back(ResponseDone{"evt_8", rid, sid, FinishReason::ToolCalls, history()[1], Usage{212, 196, 19}, 0, {}});
  out.push_back(ResponseDone{"evt_16", "resp_01JD4W5M", sid, FinishReason::Error,
                             Message{Role::Assistant, "It is", {}, "", "", std::nullopt, 1767225700000},
                             Usage{240, 212, 2}, 0, ErrorBody{ErrorCode::Internal, "engine: KV cache exhausted"}});
  out.push_back(ProgramBegun{"evt_11", "prog_01JD4W3A", sid, 1767225601500});
  out.push_back(ProgramEnded{"evt_12", "prog_01JD4W3A", 61250.5});
  out.push_back(ToolStarted{"evt_13", "call_8f2k1", 1767225602100});
  out.push_back(ToolEnded{"evt_14", "call_8f2k1", ToolStatus::Ok, 57800.25});
  out.push_back(ToolsListed{"evt_18", Json::parse(R"([{"name": "read_file", "description": "Reads a file.",
      "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
      "provider": "fs", "kind": "mcp"}])")});
  out.push_back(ServerToolStart{"resp_01JD4W6P", sid, "call_9d3k2", "read_file", Json::parse(R"({"path": "notes.txt"})"),
                                "prog_01JD4W6N"});
  out.push_back(ServerToolEnd{"resp_01JD4W6P", sid, "call_9d3k2", "read_file", ToolStatus::Ok, 12.5, 11, "hello world", {}});
  out.push_back(ServerToolEnd{"resp_01JD4W6P", sid, "call_9d3k3", "slow_search", ToolStatus::Error, 30000.8, 52,
                              "'slow_search' timed out after 30000 ms and was cancelled", "timeout"});
  out.push_back(Pong{"evt_15"});
  // The doc's invalid_field example is what the parser itself says.
  try {
    parse_client_event(R"({"type": "session.create", "event_id": "evt_17", "sampling": {"temperature": "hot"}})");
    ADD_FAILURE() << "temperature \"hot\" was accepted";
  } catch (const ProtocolError& e) {
    out.push_back(error_event(e));
  }
  out.push_back(ErrorEvent{"evt_18", ErrorCode::NotFound, "no session 'sess_nope'", ""});
  return out;
}

bool is_client_type(const std::string& t) {
  for (auto c : client_event_types())
    if (c == t) return true;
  return false;
}

bool is_server_type(const std::string& t) {
  for (auto s : server_event_types())
    if (s == t) return true;
  return false;
}

TEST(ProtocolDoc, HasExamplesAndErrorRows) {
  EXPECT_GT(doc().examples.size(), 30u);
  EXPECT_GT(doc().error_rows.size(), 20u);
}

TEST(ProtocolDoc, EveryClientExampleParsesToItsType) {
  std::set<std::string> seen;
  for (const Example& ex : doc().examples) {
    if (ex.section != "Client events") continue;
    SCOPED_TRACE("docs/protocol.md:" + std::to_string(ex.line));
    const std::string type = ex.value.value("type", "");
    ASSERT_TRUE(is_client_type(type)) << type;
    EXPECT_EQ("`" + type + "`", ex.heading) << "example under the wrong heading";
    try {
      const ClientEvent e = parse_client_event(ex.value.dump());
      EXPECT_EQ(type_name(e), type);
      EXPECT_TRUE(event_id_of(e).has_value()) << "examples show event_id";
      seen.insert(type);
    } catch (const ProtocolError& e) {
      ADD_FAILURE() << e.what();
    }
  }
  for (auto t : client_event_types()) EXPECT_TRUE(seen.count(std::string(t))) << "no example of " << t;
}

TEST(ProtocolDoc, ClientExamplesCarryTheirValues) {
  for (const Example& ex : doc().examples) {
    if (ex.section != "Client events") continue;
    const ClientEvent e = parse_client_event(ex.value.dump());
    if (auto* c = std::get_if<SessionCreate>(&e)) {
      EXPECT_EQ(c->system, "You are a terse assistant.");
      EXPECT_EQ(c->sampling.temperature, 0.2);
      EXPECT_EQ(c->sampling.max_tokens, 512);
      ASSERT_EQ(c->tools.size(), 1u);
      EXPECT_EQ(c->tools[0], weather_tool());
      EXPECT_EQ(c->metadata, Json::parse(R"({"user": "ada"})"));
    } else if (auto* a = std::get_if<MessageAppend>(&e); a && a->event_id == "evt_7") {
      ASSERT_EQ(a->messages.size(), 2u);
      EXPECT_EQ(a->messages[0].role, Role::Assistant);
      EXPECT_EQ(a->messages[0].tool_calls, std::vector<ToolCall>{weather_call()});
      EXPECT_EQ(a->messages[1].tool_call_id, "call_8f2k1");
    } else if (auto* r = std::get_if<ResponseCreate>(&e); r && r->event_id == "evt_9") {
      ASSERT_TRUE(r->tool_choice);
      EXPECT_EQ(r->tool_choice->mode, ToolChoice::Mode::Function);
      EXPECT_EQ(r->tool_choice->function, "get_weather");
    } else if (auto* r = std::get_if<ResponseCreate>(&e); r && r->event_id == "evt_17") {
      EXPECT_TRUE(r->server_tools);
      EXPECT_EQ(r->server_tool_names, (std::vector<std::string>{"read_file", "search"}));
      EXPECT_EQ(r->max_tool_turns, 4);
    } else if (auto* l = std::get_if<SessionList>(&e)) {
      EXPECT_EQ(l->limit, 20);
      EXPECT_EQ(l->after, "sess_01JD4W2Q8X5X");
    } else if (auto* g = std::get_if<SessionGet>(&e); g && g->event_id == "evt_19") {
      EXPECT_EQ(g->limit, 50);
      EXPECT_EQ(g->before, 250);
    }
  }
}

TEST(ProtocolDoc, EveryServerExampleIsWhatTheSerialisersMake) {
  const std::vector<ServerEvent> built = server_examples();
  std::vector<bool> shown(built.size(), false);
  std::set<std::string> seen;
  for (const Example& ex : doc().examples) {
    if (ex.section != "Server events") continue;
    SCOPED_TRACE("docs/protocol.md:" + std::to_string(ex.line));
    const std::string type = ex.value.value("type", "");
    ASSERT_TRUE(is_server_type(type)) << type;
    EXPECT_EQ("`" + type + "`", ex.heading) << "example under the wrong heading";
    seen.insert(type);
    bool matched = false;
    for (size_t i = 0; i < built.size(); ++i) {
      // ordered_json compares objects key by key in order: field order counts.
      if (to_json_value(built[i]) == ex.value) {
        matched = true;
        shown[i] = true;
        // The compact text must read back as the same value.
        EXPECT_EQ(Json::parse(to_json(built[i])), ex.value);
      }
    }
    EXPECT_TRUE(matched) << "no serialised event equals this example:\n" << ex.value.dump(1);
  }
  for (size_t i = 0; i < built.size(); ++i)
    EXPECT_TRUE(shown[i]) << "the doc lacks this event:\n" << to_json_value(built[i]).dump(1);
  for (auto t : server_event_types()) EXPECT_TRUE(seen.count(std::string(t))) << "no example of " << t;
}

TEST(ProtocolDoc, ObjectExamplesAreValid) {
  int checked = 0;
  for (const Example& ex : doc().examples) {
    if (ex.section != "Objects") continue;
    SCOPED_TRACE("docs/protocol.md:" + std::to_string(ex.line));
    const Json& v = ex.value;
    if (ex.heading == "Session") {
      EXPECT_EQ(to_json_value(full_session(1767225660000, 3)), v);
    } else if (ex.heading == "Sampling") {
      Json e = {{"type", "session.create"}, {"sampling", v}};
      const auto c = std::get<SessionCreate>(parse_client_event(e.dump()));
      EXPECT_EQ(to_json_value(c.sampling), v);  // every field, stop already an array
    } else if (ex.heading == "Tool") {
      Json e = {{"type", "session.create"}, {"tools", Json::array({v})}};
      const auto c = std::get<SessionCreate>(parse_client_event(e.dump()));
      EXPECT_EQ(to_json_value(c.tools[0]), v);
    } else if (ex.heading == "Tool call") {
      EXPECT_EQ(to_json_value(weather_call()), v);
    } else if (ex.heading == "Message") {
      EXPECT_EQ(to_json_value(history()[2]), v);
      Json e = {{"type", "message.append"}, {"session_id", "s"}, {"message", v}};
      const auto a = std::get<MessageAppend>(parse_client_event(e.dump()));
      Message expected = history()[2];
      expected.index.reset();  // input ignores index and created_at
      expected.created_at = 0;
      EXPECT_EQ(a.messages[0], expected);
    } else {
      ADD_FAILURE() << "unexpected example under " << ex.heading;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

TEST(ProtocolDoc, EveryErrorRowProducesItsError) {
  std::set<std::string> codes;
  for (const ErrorRow& row : doc().error_rows) {
    SCOPED_TRACE("docs/protocol.md:" + std::to_string(row.line) + ": " + row.frame);
    try {
      parse_client_event(row.frame);
      ADD_FAILURE() << "accepted";
    } catch (const ProtocolError& e) {
      EXPECT_EQ(to_string(e.code()), row.code) << e.what();
      EXPECT_EQ(e.field(), row.field) << e.what();
      codes.insert(row.code);
    }
  }
  for (const char* c : {"invalid_json", "invalid_event", "unknown_type", "missing_field", "invalid_field"})
    EXPECT_TRUE(codes.count(c)) << c;
}

TEST(ProtocolDoc, EveryErrorCodeIsDocumented) {
  std::ifstream in(std::string(MNEMO_SOURCE_DIR) + "/docs/protocol.md");
  std::stringstream text;
  text << in.rdbuf();
  for (int c = 0; c <= int(ErrorCode::Internal); ++c) {
    const std::string row = "| `" + std::string(to_string(ErrorCode(c))) + "` |";
    EXPECT_NE(text.str().find(row), std::string::npos) << row;
  }
}

}  // namespace
}  // namespace mnemo::daemon::protocol
