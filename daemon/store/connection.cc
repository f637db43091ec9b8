#include "daemon/store/connection.h"

#include <sqlite3.h>

#include "daemon/store/errors.h"

namespace mnemo::daemon::store {

namespace {

std::string sqlite_message(sqlite3* db, int rc) {
  std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) msg += " (another connection held the lock past busy_timeout)";
  return msg;
}

}  // namespace

Query::Query(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

Query::~Query() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Query::fail(int rc, std::string_view what) const {
  throw StoreError("sqlite: " + std::string(what) + ": " + sqlite_message(db_, rc) + " in \"" + sqlite3_sql(stmt_) +
                   "\"");
}

Query& Query::bind_int(int i, int64_t v) {
  if (int rc = sqlite3_bind_int64(stmt_, i, v); rc != SQLITE_OK) fail(rc, "bind");
  return *this;
}

Query& Query::bind_text(int i, std::string_view v) {
  if (int rc = sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8); rc != SQLITE_OK)
    fail(rc, "bind");
  return *this;
}

Query& Query::bind_opt_int(int i, const std::optional<int64_t>& v) {
  if (v) return bind_int(i, *v);
  if (int rc = sqlite3_bind_null(stmt_, i); rc != SQLITE_OK) fail(rc, "bind");
  return *this;
}

Query& Query::bind_opt_text(int i, const std::optional<std::string>& v) {
  if (v) return bind_text(i, *v);
  if (int rc = sqlite3_bind_null(stmt_, i); rc != SQLITE_OK) fail(rc, "bind");
  return *this;
}

Query& Query::bind_json(int i, const nlohmann::ordered_json& v) {
  if (v.is_null()) return bind_opt_text(i, std::nullopt);
  // replace: a client string with invalid UTF-8 must not fail the write.
  return bind_text(i, v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

bool Query::next() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(rc, "step");
}

void Query::run() {
  while (next()) {
  }
}

bool Query::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

int64_t Query::get_int(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Query::get_text(int col) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (!p) return {};
  return std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::optional<int64_t> Query::get_opt_int(int col) const {
  if (is_null(col)) return std::nullopt;
  return get_int(col);
}

std::optional<std::string> Query::get_opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return get_text(col);
}

nlohmann::ordered_json Query::get_json(int col) const {
  if (is_null(col)) return nullptr;
  auto j = nlohmann::ordered_json::parse(get_text(col), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw StoreError(std::string("stored JSON in column ") + sqlite3_column_name(stmt_, col) + " is unreadable: \"" +
                     sqlite3_sql(stmt_) + "\"");
  return j;
}

Connection::Connection(const std::filesystem::path& path) : path_(path) {
  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = sqlite_message(db_, rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError("sqlite: cannot open " + path.string() + ": " + msg);
  }
  sqlite3_extended_result_codes(db_, 1);
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

void Connection::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite_message(db_, rc);
    sqlite3_free(err);
    throw StoreError("sqlite: " + path_.string() + ": " + msg + " in \"" + s + "\"");
  }
}

std::string Connection::scalar(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) throw StoreError("sqlite: " + path_.string() + ": " + sqlite_message(db_, rc) + " in \"" + std::string(sql) + "\"");
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return {};
  if (rc != SQLITE_ROW) throw StoreError("sqlite: " + path_.string() + ": " + sqlite_message(db_, rc) + " in \"" + std::string(sql) + "\"");
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  return p ? std::string(p) : std::string();
}

Query Connection::query(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) throw StoreError("sqlite: cannot prepare \"" + sql + "\": " + sqlite_message(db_, rc));
    it = cache_.emplace(sql, stmt).first;
  }
  return Query(db_, it->second);
}

int64_t Connection::changes() const { return sqlite3_changes64(db_); }

int64_t Connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

Transaction::Transaction(Connection& db, Kind kind) : db_(db) {
  db_.exec(kind == Kind::Write ? "BEGIN IMMEDIATE" : "BEGIN");
}

Transaction::~Transaction() {
  if (done_) return;
  try {
    db_.exec("ROLLBACK");
  } catch (const StoreError&) {
    // SQLite already rolled back (e.g. after an I/O error); nothing to undo.
  }
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace mnemo::daemon::store
