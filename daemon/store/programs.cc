// Store: agent programs.
#include "daemon/store/connection.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::store {

namespace {

constexpr const char* kProgramColumns = "id, session_id, job_id, started_at, ended_at, metadata";

ProgramRecord read_program(const Query& q) {
  ProgramRecord p;
  p.id = q.get_text(0);
  p.session_id = q.get_opt_text(1);
  p.job_id = q.get_opt_text(2);
  p.started_at = q.get_int(3);
  p.ended_at = q.get_opt_int(4);
  p.metadata = q.get_json(5);
  return p;
}

}  // namespace

void Store::begin_program(const ProgramRecord& p) {
  if (p.id.empty()) throw InvalidRecord("program: empty id");
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  {
    auto q = db_->query("SELECT 1 FROM programs WHERE id = ?");
    q.bind_text(1, p.id);
    if (q.next()) throw Conflict("program '" + p.id + "' already exists");
  }
  if (p.session_id) require_session(*p.session_id);
  auto q = db_->query(
      "INSERT INTO programs (id, session_id, job_id, started_at, ended_at, metadata) VALUES (?, ?, ?, ?, NULL, ?)");
  q.bind_text(1, p.id)
      .bind_opt_text(2, p.session_id)
      .bind_opt_text(3, p.job_id)
      .bind_int(4, p.started_at)
      .bind_json(5, p.metadata)
      .run();
  tx.commit();
}

void Store::end_program(std::string_view id, int64_t ended_at) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  {
    auto q = db_->query("SELECT started_at, ended_at FROM programs WHERE id = ?");
    q.bind_text(1, id);
    if (!q.next()) throw NotFound("program '" + std::string(id) + "' not found");
    if (!q.is_null(1)) throw Conflict("program '" + std::string(id) + "' has already ended");
    if (ended_at < q.get_int(0))
      throw InvalidRecord("program '" + std::string(id) + "': ended_at " + std::to_string(ended_at) +
                          " is before started_at " + std::to_string(q.get_int(0)));
  }
  auto q = db_->query("UPDATE programs SET ended_at = ? WHERE id = ?");
  q.bind_int(1, ended_at).bind_text(2, id).run();
  tx.commit();
}

std::optional<ProgramRecord> Store::get_program(std::string_view id) {
  std::lock_guard lock(mu_);
  auto q = db_->query(std::string("SELECT ") + kProgramColumns + " FROM programs WHERE id = ?");
  q.bind_text(1, id);
  if (!q.next()) return std::nullopt;
  return read_program(q);
}

std::optional<ProgramRecord> Store::find_program_by_job(std::string_view job_id) {
  std::lock_guard lock(mu_);
  auto q = db_->query(std::string("SELECT ") + kProgramColumns +
                      " FROM programs WHERE job_id = ? ORDER BY started_at DESC, rowid DESC LIMIT 1");
  q.bind_text(1, job_id);
  if (!q.next()) return std::nullopt;
  return read_program(q);
}

std::vector<ProgramRecord> Store::session_programs(std::string_view session_id) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_, Transaction::Kind::Read);
  require_session(session_id);
  std::vector<ProgramRecord> out;
  auto q = db_->query(std::string("SELECT ") + kProgramColumns +
                      " FROM programs WHERE session_id = ? ORDER BY started_at, rowid");
  q.bind_text(1, session_id);
  while (q.next()) out.push_back(read_program(q));
  return out;
}

}  // namespace mnemo::daemon::store
