// Store: Responses API responses and the sessions that hold their chains.
#include "daemon/store/connection.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::store {

void Store::save_response(ResponseRecord& r, std::span<const MessageRecord> input,
                          std::span<const MessageRecord> output) {
  if (r.id.empty()) throw InvalidRecord("response: empty id");
  if (!r.json.is_object()) throw InvalidRecord("response '" + r.id + "': the response object must be a JSON object");
  grouped_write([&] {
    require_session(r.session_id);
    {
      auto q = db_->query("SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE session_id = ?");
      q.bind_text(1, r.session_id);
      q.next();
      r.input_from = q.get_int(0);
    }
    r.output_from = r.input_from;
    for (const auto& m : input) r.output_from = insert_message(r.session_id, m) + 1;
    r.output_to = r.output_from;
    for (const auto& m : output) r.output_to = insert_message(r.session_id, m) + 1;
    auto q = db_->query(
        "INSERT INTO responses (id, session_id, previous_id, input_from, output_from, output_to, created_at, json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    q.bind_text(1, r.id)
        .bind_text(2, r.session_id)
        .bind_opt_text(3, r.previous_id)
        .bind_int(4, r.input_from)
        .bind_int(5, r.output_from)
        .bind_int(6, r.output_to)
        .bind_int(7, r.created_at)
        .bind_json(8, r.json)
        .run();
  });
}

std::optional<ResponseRecord> Store::get_response(std::string_view id) {
  std::lock_guard lock(mu_);
  auto q = db_->query(
      "SELECT id, session_id, previous_id, input_from, output_from, output_to, created_at, json FROM responses "
      "WHERE id = ?");
  q.bind_text(1, id);
  if (!q.next()) return std::nullopt;
  ResponseRecord r;
  r.id = q.get_text(0);
  r.session_id = q.get_text(1);
  r.previous_id = q.get_opt_text(2);
  r.input_from = q.get_int(3);
  r.output_from = q.get_int(4);
  r.output_to = q.get_int(5);
  r.created_at = q.get_int(6);
  r.json = q.get_json(7);
  return r;
}

void Store::delete_response(std::string_view id) {
  grouped_write([&] {
    auto q = db_->query("DELETE FROM responses WHERE id = ?");
    q.bind_text(1, id).run();
    if (db_->changes() == 0) throw NotFound("response '" + std::string(id) + "' not found");
  });
}

void Store::fork_session(const SessionRecord& s, std::string_view from, int64_t before_seq) {
  create_session(s);
  grouped_write([&] {
    require_session(from);
    auto q = db_->query(
        "INSERT INTO messages (session_id, seq, role, content, tool_calls, tool_call_id, name, created_at, usage) "
        "SELECT ?, seq, role, content, tool_calls, tool_call_id, name, created_at, usage FROM messages "
        "WHERE session_id = ? AND seq < ?");
    q.bind_text(1, s.id).bind_text(2, from).bind_int(3, before_seq).run();
  });
}

}  // namespace mnemo::daemon::store
