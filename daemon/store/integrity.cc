// Store: the startup check and --repair's row-by-row recovery. The copy reads
// the damaged file through SQLite itself, seeking by key: when a scan hits a
// damaged page it looks further along the key space for the next readable
// row (doubling the jump, then bisecting back), so one bad page costs the
// rows on that page, not the rest of the table.
#include "daemon/store/integrity.h"

#include <sqlite3.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <limits>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>

#include "daemon/store/connection.h"
#include "daemon/store/errors.h"
#include "daemon/store/schema.h"

namespace mnemo::daemon::store {

namespace fs = std::filesystem;

std::vector<std::string> quick_check(Connection& db, size_t max) {
  try {
    auto rows = db.column("PRAGMA quick_check(" + std::to_string(max) + ")", max);
    if (rows.size() == 1 && rows[0] == "ok") return {};
    if (rows.empty()) return {"PRAGMA quick_check returned nothing"};
    return rows;
  } catch (const StorageFailure& e) {
    // Too damaged to check (the schema or the header is unreadable).
    if (e.fault() == StorageFault::Corrupt) return {e.what()};
    throw;
  }
}

namespace {

class Stmt {
 public:
  // Null when the statement cannot be prepared (say, a table the damaged
  // file's schema lacks or cannot read); why() says why.
  Stmt(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) {
      why_ = sqlite3_errmsg(db);
      sqlite3_finalize(s_);
      s_ = nullptr;
    }
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  sqlite3_stmt* get() const { return s_; }
  const std::string& why() const { return why_; }

 private:
  sqlite3_stmt* s_ = nullptr;
  std::string why_;
};

// Walks `up` (key in column 0, ascending, lower bound in its last
// parameter; bind_extra binds the others) from key 0 upwards, calling on_row
// for every readable row and skipping damaged regions. `down` (descending,
// exclusive upper bound last), when given, reads back from past a damaged
// region: in a WITHOUT ROWID b-tree the row dividing two leaves sits on
// their parent page, and a seek that starts at it still lands in the damaged
// leaf on its left.
void walk(sqlite3_stmt* up, sqlite3_stmt* down, const std::function<void(sqlite3_stmt*)>& bind_extra,
          const std::function<void(sqlite3_stmt*)>& on_row, TableRecovery& rec) {
  auto start = [&](sqlite3_stmt* st, int64_t bound) {
    sqlite3_reset(st);
    bind_extra(st);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_count(st), bound);
  };
  // Whether a scan from `from` can read its first row (or finds none).
  auto readable_from = [&](int64_t from) {
    start(up, from);
    const int rc = sqlite3_step(up);
    return rc == SQLITE_ROW || rc == SQLITE_DONE;
  };
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t from = 0;
  for (int resumes = 0; resumes < 100000; ++resumes) {
    start(up, from);
    int rc;
    int64_t next = from;  // the lowest key not yet read
    while ((rc = sqlite3_step(up)) == SQLITE_ROW) {
      const int64_t key = sqlite3_column_int64(up, 0);
      on_row(up);
      if (key == kMax) {
        rc = SQLITE_DONE;
        break;
      }
      next = key + 1;
    }
    if (rc == SQLITE_DONE) break;
    ++rec.unreadable;
    // Find some readable bound past `next`, then the lowest one.
    int64_t bad = next, good = -1;
    for (int64_t step = 1; step > 0 && bad <= kMax - step; step *= 2) {
      if (readable_from(bad + step)) {
        good = bad + step;
        break;
      }
    }
    if (good < 0) break;  // nothing readable past the damage
    while (good - bad > 1) {  // bad fails, good reads: bisect to the lowest readable bound
      const int64_t mid = bad + (good - bad) / 2;
      (readable_from(mid) ? good : bad) = mid;
    }
    if (down) {
      start(down, good);
      while (sqlite3_step(down) == SQLITE_ROW && sqlite3_column_int64(down, 0) >= next) on_row(down);
      sqlite3_reset(down);
    }
    from = good;
  }
  sqlite3_reset(up);
}

// Inserts the columns 1..n of `row` (read on the damaged file's connection)
// into the fresh file; false when it refuses the row (its session or
// program was lost, a CHECK).
bool insert_row(Connection& out, sqlite3_stmt* insert, sqlite3_stmt* row, int columns) {
  sqlite3_reset(insert);
  for (int i = 0; i < columns; ++i) {
    const int c = i + 1;
    switch (sqlite3_column_type(row, c)) {
      case SQLITE_INTEGER: sqlite3_bind_int64(insert, c, sqlite3_column_int64(row, c)); break;
      case SQLITE_FLOAT: sqlite3_bind_double(insert, c, sqlite3_column_double(row, c)); break;
      case SQLITE_TEXT:
        sqlite3_bind_text(insert, c, reinterpret_cast<const char*>(sqlite3_column_text(row, c)),
                          sqlite3_column_bytes(row, c), SQLITE_TRANSIENT);
        break;
      case SQLITE_BLOB:
        sqlite3_bind_blob(insert, c, sqlite3_column_blob(row, c), sqlite3_column_bytes(row, c), SQLITE_TRANSIENT);
        break;
      default: sqlite3_bind_null(insert, c);
    }
  }
  const int rc = sqlite3_step(insert);
  sqlite3_reset(insert);
  if (rc == SQLITE_DONE) return true;
  // The fresh file itself failing (full disk) ends the repair.
  if (storage_fault_of(rc)) out.fail(rc, "copying into the repaired file");
  return false;
}

std::vector<std::string> columns_of(Connection& out, const std::string& table) {
  return out.column("SELECT name FROM pragma_table_info('" + table + "') ORDER BY cid", 1000);
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string insert_sql(const std::string& table, const std::vector<std::string>& cols) {
  std::string q;
  for (size_t i = 0; i < cols.size(); ++i) q += i ? ", ?" : "?";
  return "INSERT INTO " + table + " (" + joined(cols) + ") VALUES (" + q + ")";
}

// A table whose rows are found by rowid.
TableRecovery copy_rowid_table(sqlite3* src, Connection& out, const std::string& table) {
  TableRecovery rec{table};
  const auto cols = columns_of(out, table);
  Stmt select(src, "SELECT rowid, " + joined(cols) + " FROM " + table +
                                " WHERE rowid >= ?1 ORDER BY rowid");
  Stmt insert(out.handle(), insert_sql(table, cols));
  if (!insert.get()) out.fail(sqlite3_errcode(out.handle()), "preparing the insert into " + table);
  if (!select.get()) {
    spdlog::warn("repair: table {} unreadable: {}", table, select.why());
    ++rec.unreadable;
    return rec;
  }
  walk(
      select.get(), nullptr, [](sqlite3_stmt*) {},
      [&](sqlite3_stmt* row) { ++(insert_row(out, insert.get(), row, int(cols.size())) ? rec.copied : rec.refused); },
      rec);
  return rec;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Messages, session by session, found by (session_id, seq). A session whose
// row was lost but whose messages survive gets an empty session row, so the
// messages stay reachable.
TableRecovery copy_messages(sqlite3* src, Connection& out, int64_t& sessions_recreated) {
  TableRecovery rec{"messages"};
  std::set<std::string> ids;
  for (const auto& id : out.column("SELECT id FROM sessions", std::numeric_limits<size_t>::max())) ids.insert(id);
  {
    // Sessions named by messages: one seek per session; the scan stops at
    // the first damaged page (the sessions found above cover the rest).
    Stmt next_id(src, "SELECT session_id FROM messages WHERE session_id > ?1 ORDER BY session_id LIMIT 1");
    std::string last;
    while (next_id.get()) {
      sqlite3_reset(next_id.get());
      sqlite3_bind_text(next_id.get(), 1, last.c_str(), int(last.size()), SQLITE_TRANSIENT);
      if (sqlite3_step(next_id.get()) != SQLITE_ROW) break;
      auto* p = reinterpret_cast<const char*>(sqlite3_column_text(next_id.get(), 0));
      if (!p) break;
      last = p;
      ids.insert(last);
    }
  }
  const auto cols = columns_of(out, "messages");
  Stmt select(src, "SELECT seq, " + joined(cols) + " FROM messages WHERE session_id = ?1 AND seq >= ?2 ORDER BY seq");
  Stmt select_down(src, "SELECT seq, " + joined(cols) +
                            " FROM messages WHERE session_id = ?1 AND seq < ?2 ORDER BY seq DESC");
  Stmt insert(out.handle(), insert_sql("messages", cols));
  Stmt has_session(out.handle(), "SELECT 1 FROM sessions WHERE id = ?1");
  Stmt add_session(out.handle(),
                   "INSERT INTO sessions (id, created_at, updated_at, metadata) VALUES (?1, ?2, ?2, "
                   "'{\"mnemo_repair\":\"the session row was lost; recreated by mnemod --repair\"}')");
  if (!insert.get() || !has_session.get() || !add_session.get())
    out.fail(sqlite3_errcode(out.handle()), "preparing the repair of messages");
  if (!select.get() || !select_down.get()) {
    spdlog::warn("repair: table messages unreadable: {}", select.why() + select_down.why());
    ++rec.unreadable;
    return rec;
  }
  for (const std::string& id : ids) {
    bool known = false;
    walk(
        select.get(), select_down.get(),
        [&](sqlite3_stmt* s) { sqlite3_bind_text(s, 1, id.c_str(), int(id.size()), SQLITE_TRANSIENT); },
        [&](sqlite3_stmt* row) {
          if (!known) {
            sqlite3_reset(has_session.get());
            sqlite3_bind_text(has_session.get(), 1, id.c_str(), int(id.size()), SQLITE_TRANSIENT);
            if (sqlite3_step(has_session.get()) != SQLITE_ROW) {
              sqlite3_reset(add_session.get());
              sqlite3_bind_text(add_session.get(), 1, id.c_str(), int(id.size()), SQLITE_TRANSIENT);
              sqlite3_bind_int64(add_session.get(), 2, now_ms());
              const int rc = sqlite3_step(add_session.get());
              if (rc != SQLITE_DONE) out.fail(rc, "recreating session " + id);
              ++sessions_recreated;
            }
            sqlite3_reset(has_session.get());
            known = true;
          }
          ++(insert_row(out, insert.get(), row, int(cols.size())) ? rec.copied : rec.refused);
        },
        rec);
  }
  return rec;
}

std::string utc_stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

fs::path with_suffix(const fs::path& p, const std::string& suffix) {
  fs::path out = p;
  out += suffix;
  return out;
}

void remove_with_side_files(const fs::path& p) {
  for (const char* s : {"", "-journal", "-wal", "-shm"}) fs::remove(with_suffix(p, s));
}

}  // namespace

RepairReport repair(const fs::path& path) {
  RepairReport r;
  if (!fs::exists(path)) return r;
  {
    Connection old(path);
    old.exec("PRAGMA busy_timeout = 5000");
    r.problems = quick_check(old);
  }
  if (r.problems.empty()) return r;
  r.needed = true;

  const fs::path fresh = with_suffix(path, ".repairing");
  remove_with_side_files(fresh);
  {
    // Two connections: a read failing on the damaged file must not touch the
    // transaction writing the fresh one. A rollback journal while copying:
    // once closed, the fresh file stands alone (no -wal to carry along when
    // it is renamed).
    Connection src(path);
    src.exec("PRAGMA busy_timeout = 5000");
    Connection out(fresh);
    migrate(out);
    out.exec("PRAGMA foreign_keys = ON");
    out.exec("BEGIN");
    try {
      r.tables.push_back(copy_rowid_table(src.handle(), out, "sessions"));
      r.tables.push_back(copy_messages(src.handle(), out, r.sessions_recreated));
      for (const char* t : {"programs", "tool_calls", "turns"})
        r.tables.push_back(copy_rowid_table(src.handle(), out, t));
      out.exec("COMMIT");
    } catch (...) {
      if (out.in_transaction()) sqlite3_exec(out.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  fs::path damaged = with_suffix(path, ".damaged-" + utc_stamp());
  for (int n = 2; fs::exists(damaged); ++n) damaged = with_suffix(path, ".damaged-" + utc_stamp() + "-" + std::to_string(n));
  // The -wal belongs to the damaged file: left behind, it would be replayed
  // into the fresh one.
  fs::rename(path, damaged);
  for (const char* s : {"-wal", "-shm"})
    if (fs::exists(with_suffix(path, s))) fs::rename(with_suffix(path, s), with_suffix(damaged, s));
  fs::rename(fresh, path);
  r.damaged_copy = damaged;
  return r;
}

}  // namespace mnemo::daemon::store
