#pragma once
// The Responses API's items: the response's output items from a finished
// turn, the stored messages of a response's input as input items, and the
// conversions between chat messages and the store's records.
#include <string>
#include <vector>

#include "daemon/app/responder.h"
#include "daemon/protocol/json.h"
#include "daemon/store/records.h"
#include "engine/tokenizer/chat_template.h"

namespace mnemo::daemon::app {

store::MessageRecord to_record(const engine::ChatMessage& m, int64_t created_at);
engine::ChatMessage to_chat(const store::MessageRecord& r);

// Item ids are derived from the response id, so they read the same from
// every endpoint: "msg_<r>_o0", "fc_<r>_o1" (output), "msg_<r>_i0" (input).
std::string item_id(const std::string& prefix, const std::string& response_id, char where, size_t index);

protocol::Json message_item(const std::string& id, const std::string& text, const char* status);
protocol::Json function_call_item(const std::string& id, const engine::ToolCall& call, const char* status);
// A finished turn's output: its text as a message item (when any), then one
// function_call item per call.
protocol::Json output_items(const std::string& response_id, const ResponseOutcome& o);
// A response's stored input messages as input items.
protocol::Json input_items(const std::string& response_id, const std::vector<store::MessageRecord>& input);

}  // namespace mnemo::daemon::app
