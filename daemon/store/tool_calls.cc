// Store: tool calls and their durations.
#include <algorithm>
#include <cstdint>

#include "daemon/store/connection.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::store {

void Store::start_tool_call(const ToolCallRecord& c) {
  if (c.id.empty()) throw InvalidRecord("tool call: empty id");
  if (c.name.empty()) throw InvalidRecord("tool call '" + c.id + "': empty name");
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  {
    auto q = db_->query("SELECT 1 FROM tool_calls WHERE id = ?");
    q.bind_text(1, c.id);
    if (q.next()) throw Conflict("tool call '" + c.id + "' already exists");
  }
  if (c.program_id) require_program(*c.program_id);
  if (c.session_id) require_session(*c.session_id);
  auto q = db_->query(
      "INSERT INTO tool_calls (id, program_id, session_id, name, arguments, started_at) VALUES (?, ?, ?, ?, ?, ?)");
  q.bind_text(1, c.id)
      .bind_opt_text(2, c.program_id)
      .bind_opt_text(3, c.session_id)
      .bind_text(4, c.name)
      .bind_json(5, c.arguments)
      .bind_int(6, c.started_at)
      .run();
  tx.commit();
}

void Store::end_tool_call(std::string_view id, int64_t ended_at, ToolStatus status, std::string_view result) {
  const std::string_view status_text = tool_status_name(status);
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  {
    auto q = db_->query("SELECT started_at, ended_at FROM tool_calls WHERE id = ?");
    q.bind_text(1, id);
    if (!q.next()) throw NotFound("tool call '" + std::string(id) + "' not found");
    if (!q.is_null(1)) throw Conflict("tool call '" + std::string(id) + "' has already ended");
    if (ended_at < q.get_int(0))
      throw InvalidRecord("tool call '" + std::string(id) + "': ended_at " + std::to_string(ended_at) +
                          " is before started_at " + std::to_string(q.get_int(0)));
  }
  auto q = db_->query("UPDATE tool_calls SET ended_at = ?, status = ?, result = ? WHERE id = ?");
  q.bind_int(1, ended_at).bind_text(2, status_text).bind_text(3, result).bind_text(4, id).run();
  tx.commit();
}

std::optional<ToolCallRecord> Store::get_tool_call(std::string_view id) {
  std::lock_guard lock(mu_);
  auto q = db_->query(
      "SELECT id, program_id, session_id, name, arguments, started_at, ended_at, status, result "
      "FROM tool_calls WHERE id = ?");
  q.bind_text(1, id);
  if (!q.next()) return std::nullopt;
  ToolCallRecord c;
  c.id = q.get_text(0);
  c.program_id = q.get_opt_text(1);
  c.session_id = q.get_opt_text(2);
  c.name = q.get_text(3);
  c.arguments = q.get_json(4);
  c.started_at = q.get_int(5);
  c.ended_at = q.get_opt_int(6);
  if (auto s = q.get_opt_text(7)) c.status = parse_tool_status(*s);
  c.result = q.get_opt_text(8);
  return c;
}

std::vector<int64_t> Store::tool_durations(std::string_view name, std::size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<int64_t> out;
  if (limit == 0) return out;
  auto q = db_->query(
      "SELECT ended_at - started_at FROM tool_calls WHERE name = ? AND ended_at IS NOT NULL "
      "ORDER BY ended_at DESC, rowid DESC LIMIT ?");
  q.bind_text(1, name).bind_int(2, static_cast<int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
  while (q.next()) out.push_back(q.get_int(0));
  return out;
}

std::vector<std::string> Store::tool_names() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  auto q = db_->query("SELECT DISTINCT name FROM tool_calls WHERE ended_at IS NOT NULL ORDER BY name");
  while (q.next()) out.push_back(q.get_text(0));
  return out;
}

}  // namespace mnemo::daemon::store
