// Store: what memory policies learned, one JSON document per policy, and
// per episodic session its episode index.
#include "daemon/store/connection.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::store {

std::optional<nlohmann::ordered_json> Store::get_policy_state(std::string_view name) {
  std::lock_guard lock(mu_);
  auto q = db_->query("SELECT json FROM policy_state WHERE name = ?");
  q.bind_text(1, name);
  if (!q.next()) return std::nullopt;
  return q.get_json(0);
}

void Store::put_policy_state(std::string_view name, const nlohmann::ordered_json& state, int64_t updated_at) {
  if (name.empty()) throw InvalidRecord("policy state: empty name");
  if (state.is_null()) throw InvalidRecord("policy state '" + std::string(name) + "': null document");
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  auto q = db_->query(
      "INSERT INTO policy_state (name, json, updated_at) VALUES (?, ?, ?) "
      "ON CONFLICT (name) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at");
  q.bind_text(1, name).bind_json(2, state).bind_int(3, updated_at).run();
  tx.commit();
}

std::optional<nlohmann::ordered_json> Store::get_session_episodes(std::string_view session_id) {
  std::lock_guard lock(mu_);
  auto q = db_->query("SELECT json FROM session_episodes WHERE session_id = ?");
  q.bind_text(1, session_id);
  if (!q.next()) return std::nullopt;
  return q.get_json(0);
}

void Store::put_session_episodes(std::string_view session_id, const nlohmann::ordered_json& state,
                                 int64_t updated_at) {
  if (state.is_null()) throw InvalidRecord("session episodes '" + std::string(session_id) + "': null document");
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  require_session(session_id);
  auto q = db_->query(
      "INSERT INTO session_episodes (session_id, json, updated_at) VALUES (?, ?, ?) "
      "ON CONFLICT (session_id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at");
  q.bind_text(1, session_id).bind_json(2, state).bind_int(3, updated_at).run();
  tx.commit();
}

}  // namespace mnemo::daemon::store
