// Store: sessions.
#include <algorithm>
#include <cstdint>

#include "daemon/store/connection.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::store {

namespace {

constexpr const char* kSessionColumns =
    "id, created_at, updated_at, model, system_prompt, sampling, tools, metadata, memory";

SessionRecord read_session(const Query& q) {
  SessionRecord s;
  s.id = q.get_text(0);
  s.created_at = q.get_int(1);
  s.updated_at = q.get_int(2);
  s.model = q.get_text(3);
  s.system_prompt = q.get_text(4);
  s.sampling = q.get_json(5);
  s.tools = q.get_json(6);
  s.metadata = q.get_json(7);
  s.memory = q.get_json(8);
  return s;
}

}  // namespace

void Store::create_session(const SessionRecord& s) {
  if (s.id.empty()) throw InvalidRecord("session: empty id");
  grouped_write([&] {
    {
      auto q = db_->query("SELECT 1 FROM sessions WHERE id = ?");
      q.bind_text(1, s.id);
      if (q.next()) throw Conflict("session '" + s.id + "' already exists");
    }
    auto q = db_->query(
        "INSERT INTO sessions (id, created_at, updated_at, model, system_prompt, sampling, tools, metadata, memory) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    q.bind_text(1, s.id)
        .bind_int(2, s.created_at)
        .bind_int(3, s.updated_at != 0 ? s.updated_at : s.created_at)
        .bind_text(4, s.model)
        .bind_text(5, s.system_prompt)
        .bind_json(6, s.sampling)
        .bind_json(7, s.tools)
        .bind_json(8, s.metadata)
        .bind_json(9, s.memory)
        .run();
  });
}

std::optional<SessionRecord> Store::get_session(std::string_view id) {
  std::lock_guard lock(mu_);
  auto q = db_->query(std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE id = ?");
  q.bind_text(1, id);
  if (!q.next()) return std::nullopt;
  return read_session(q);
}

std::vector<SessionRecord> Store::list_sessions(std::size_t limit, std::optional<std::string_view> after) {
  std::lock_guard lock(mu_);
  std::vector<SessionRecord> out;
  if (limit == 0) return out;
  const auto lim = static_cast<int64_t>(std::min<std::size_t>(limit, INT64_MAX));
  if (!after) {
    auto q = db_->query(std::string("SELECT ") + kSessionColumns +
                        " FROM sessions ORDER BY created_at, id LIMIT ?");
    q.bind_int(1, lim);
    while (q.next()) out.push_back(read_session(q));
    return out;
  }
  // One snapshot for the cursor row and the page.
  Transaction tx(*db_, Transaction::Kind::Read);
  int64_t cursor_created = 0;
  {
    auto q = db_->query("SELECT created_at FROM sessions WHERE id = ?");
    q.bind_text(1, *after);
    if (!q.next()) throw NotFound("list cursor: session '" + std::string(*after) + "' not found");
    cursor_created = q.get_int(0);
  }
  auto q = db_->query(std::string("SELECT ") + kSessionColumns +
                      " FROM sessions WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?");
  q.bind_int(1, cursor_created).bind_text(2, *after).bind_int(3, lim);
  while (q.next()) out.push_back(read_session(q));
  return out;
}

int64_t Store::count_sessions() {
  std::lock_guard lock(mu_);
  auto q = db_->query("SELECT count(*) FROM sessions");
  q.next();
  return q.get_int(0);
}

void Store::delete_session(std::string_view id) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  {
    auto q = db_->query("DELETE FROM sessions WHERE id = ?");
    q.bind_text(1, id).run();
  }
  if (db_->changes() == 0) throw NotFound("session '" + std::string(id) + "' not found");
  tx.commit();
}

void Store::update_session_metadata(std::string_view id, const nlohmann::ordered_json& metadata, int64_t updated_at) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  {
    auto q = db_->query("UPDATE sessions SET metadata = ?, updated_at = max(updated_at, ?) WHERE id = ?");
    q.bind_json(1, metadata).bind_int(2, updated_at).bind_text(3, id).run();
  }
  if (db_->changes() == 0) throw NotFound("session '" + std::string(id) + "' not found");
  tx.commit();
}

void Store::touch_session(std::string_view id, int64_t updated_at) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  {
    auto q = db_->query("UPDATE sessions SET updated_at = max(updated_at, ?) WHERE id = ?");
    q.bind_int(1, updated_at).bind_text(2, id).run();
  }
  if (db_->changes() == 0) throw NotFound("session '" + std::string(id) + "' not found");
  tx.commit();
}

}  // namespace mnemo::daemon::store
