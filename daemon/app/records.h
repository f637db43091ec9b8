#pragma once
// Conversions between the protocol's values, the store's records and the
// engine's chat messages.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/protocol/types.h"
#include "daemon/store/records.h"
#include "engine/tokenizer/chat_template.h"

namespace mnemo::daemon::app {

int64_t now_ms();
// prefix + 12 hex digits of the time in ms + 8 hex digits of a counter: ids sort by creation.
std::string make_id(std::string_view prefix);

protocol::Session to_protocol(const store::SessionRecord& r, int64_t message_count);
store::SessionRecord to_record(const protocol::Session& s);
protocol::Message to_protocol(const store::MessageRecord& r);
store::MessageRecord to_record(const protocol::Message& m);
engine::ChatMessage to_chat(const protocol::Message& m);
// Tool-call arguments as the engine's JSON text -> an object (non-objects and
// unparsable text are wrapped as {"_raw": text}, so nothing is lost).
protocol::Json arguments_object(const std::string& json_text);
protocol::ToolCall to_protocol(const engine::ToolCall& c);
nlohmann::ordered_json tools_json(const std::vector<protocol::ToolDef>& tools);

}  // namespace mnemo::daemon::app
