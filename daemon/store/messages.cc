// Store: messages of a session.
#include <algorithm>
#include <cstdint>

#include "daemon/store/connection.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::store {

int64_t Store::append_message(std::string_view session_id, const MessageRecord& m) {
  if (!m.tool_calls.is_null() && !m.tool_calls.is_array())
    throw InvalidRecord("message: tool_calls must be an array, got " + std::string(m.tool_calls.type_name()));
  int64_t seq = 0;
  grouped_write([&] { seq = insert_message(session_id, m); });
  return seq;
}

int64_t Store::insert_message(std::string_view session_id, const MessageRecord& m) {
  require_session(session_id);
  int64_t seq = 0;
  {
    auto q = db_->query("SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE session_id = ?");
    q.bind_text(1, session_id);
    q.next();
    seq = q.get_int(0);
  }
  {
    auto q = db_->query(
        "INSERT INTO messages (session_id, seq, role, content, tool_calls, tool_call_id, name, created_at, usage) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    q.bind_text(1, session_id)
        .bind_int(2, seq)
        .bind_text(3, role_name(m.role))
        .bind_text(4, m.content)
        .bind_json(5, m.tool_calls)
        .bind_opt_text(6, m.tool_call_id)
        .bind_opt_text(7, m.name)
        .bind_int(8, m.created_at)
        .bind_json(9, m.usage)
        .run();
  }
  {
    auto q = db_->query("UPDATE sessions SET updated_at = max(updated_at, ?) WHERE id = ?");
    q.bind_int(1, m.created_at).bind_text(2, session_id).run();
  }
  return seq;
}

namespace {

constexpr const char* kMessageColumns =
    "SELECT seq, role, content, tool_calls, tool_call_id, name, created_at, usage FROM messages ";

MessageRecord read_message(const Query& q) {
  MessageRecord m;
  m.seq = q.get_int(0);
  m.role = parse_role(q.get_text(1));
  m.content = q.get_text(2);
  m.tool_calls = q.get_json(3);
  m.tool_call_id = q.get_opt_text(4);
  m.name = q.get_opt_text(5);
  m.created_at = q.get_int(6);
  m.usage = q.get_json(7);
  return m;
}

}  // namespace

std::vector<MessageRecord> Store::history(std::string_view session_id) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_, Transaction::Kind::Read);  // one snapshot: existence check and rows
  require_session(session_id);
  std::vector<MessageRecord> out;
  auto q = db_->query(std::string(kMessageColumns) + "WHERE session_id = ? ORDER BY seq");
  q.bind_text(1, session_id);
  while (q.next()) out.push_back(read_message(q));
  return out;
}

void Store::history_before(std::string_view session_id, int64_t before_seq, std::size_t limit,
                           const std::function<bool(MessageRecord&&)>& take) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_, Transaction::Kind::Read);
  require_session(session_id);
  if (limit == 0) return;
  // The primary key (session_id, seq) serves this range backwards: no sort,
  // and only the rows handed out are read.
  auto q = db_->query(std::string(kMessageColumns) + "WHERE session_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?");
  q.bind_text(1, session_id).bind_int(2, before_seq).bind_int(3, int64_t(std::min<std::size_t>(limit, INT64_MAX)));
  while (q.next())
    if (!take(read_message(q))) return;
}

int64_t Store::message_count(std::string_view session_id) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_, Transaction::Kind::Read);
  require_session(session_id);
  auto q = db_->query("SELECT count(*) FROM messages WHERE session_id = ?");
  q.bind_text(1, session_id);
  q.next();
  return q.get_int(0);
}

}  // namespace mnemo::daemon::store
