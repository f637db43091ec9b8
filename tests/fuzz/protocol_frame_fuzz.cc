// libFuzzer target: the input is one WebSocket text message from a client.
// parse_client_event may only return an event or throw ProtocolError (never
// with code internal, which marks a reader bug); the error event built from
// a refusal must serialise to valid JSON; and an accepted session.create or
// message.append, serialised the way the server shows sessions and
// messages, must parse back to the same values.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "daemon/protocol/client_events.h"
#include "daemon/protocol/server_events.h"

namespace {

using namespace mnemo::daemon::protocol;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "protocol invariant violated: %s\n", what);
  std::abort();
}

void check_round_trip(const ClientEvent& e) {
  if (const auto* c = std::get_if<SessionCreate>(&e)) {
    Session s;
    s.system = c->system;
    s.sampling = c->sampling;
    s.tools = c->tools;
    s.metadata = c->metadata;
    Json j = to_json_value(s);
    j["type"] = "session.create";
    const auto back = std::get<SessionCreate>(parse_client_event(j.dump()));
    if (back.system != c->system || !(back.sampling == c->sampling) || back.tools != c->tools ||
        back.metadata != c->metadata)
      violated("session.create does not survive serialisation");
  } else if (const auto* a = std::get_if<MessageAppend>(&e)) {
    Json msgs = Json::array();
    for (const Message& m : a->messages) msgs.push_back(to_json_value(m));
    Json j = {{"type", "message.append"}, {"session_id", a->session_id}, {"messages", msgs}};
    const auto back = std::get<MessageAppend>(parse_client_event(j.dump()));
    if (back.messages != a->messages) violated("message.append does not survive serialisation");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const ClientEvent e = parse_client_event(text);
    const auto& id = event_id_of(e);
    if (id && (id->empty() || id->size() > kMaxIdBytes)) violated("event_id out of bounds");
    check_round_trip(e);
  } catch (const ProtocolError& err) {
    if (err.code() == ErrorCode::Internal) violated(err.what());
    const std::string out = to_json(error_event(err));
    if (!Json::accept(out)) violated("error event is not valid JSON");
  }
  return 0;
}
