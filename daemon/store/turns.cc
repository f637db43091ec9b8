// Store: turns (one LLM request of a program, with Continuum's fields).
#include "daemon/store/connection.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::store {

int64_t Store::record_turn(const TurnRecord& t) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  require_program(t.program_id);
  {
    auto q = db_->query(
        "INSERT INTO turns (program_id, job_id, is_last_step, this_func_call, last_func_call, started_at, ended_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    q.bind_text(1, t.program_id)
        .bind_opt_text(2, t.job_id)
        .bind_int(3, t.is_last_step ? 1 : 0)
        .bind_opt_text(4, t.this_func_call)
        .bind_opt_text(5, t.last_func_call)
        .bind_int(6, t.started_at)
        .bind_opt_int(7, t.ended_at)
        .run();
  }
  const int64_t id = db_->last_insert_rowid();
  tx.commit();
  return id;
}

void Store::end_turn(int64_t id, int64_t ended_at) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  {
    auto q = db_->query("SELECT started_at, ended_at FROM turns WHERE id = ?");
    q.bind_int(1, id);
    if (!q.next()) throw NotFound("turn " + std::to_string(id) + " not found");
    if (!q.is_null(1)) throw Conflict("turn " + std::to_string(id) + " has already ended");
    if (ended_at < q.get_int(0))
      throw InvalidRecord("turn " + std::to_string(id) + ": ended_at " + std::to_string(ended_at) +
                          " is before started_at " + std::to_string(q.get_int(0)));
  }
  auto q = db_->query("UPDATE turns SET ended_at = ? WHERE id = ?");
  q.bind_int(1, ended_at).bind_int(2, id).run();
  tx.commit();
}

std::vector<TurnRecord> Store::program_turns(std::string_view program_id) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_, Transaction::Kind::Read);
  require_program(program_id);
  std::vector<TurnRecord> out;
  auto q = db_->query(
      "SELECT id, program_id, job_id, is_last_step, this_func_call, last_func_call, started_at, ended_at "
      "FROM turns WHERE program_id = ? ORDER BY id");
  q.bind_text(1, program_id);
  while (q.next()) {
    TurnRecord t;
    t.id = q.get_int(0);
    t.program_id = q.get_text(1);
    t.job_id = q.get_opt_text(2);
    t.is_last_step = q.get_int(3) != 0;
    t.this_func_call = q.get_opt_text(4);
    t.last_func_call = q.get_opt_text(5);
    t.started_at = q.get_int(6);
    t.ended_at = q.get_opt_int(7);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace mnemo::daemon::store
