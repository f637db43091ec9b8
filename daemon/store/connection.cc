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

Query::Query(Connection& owner, sqlite3_stmt* stmt) : owner_(owner), stmt_(stmt) {}

Query::~Query() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Query::fail(int rc, std::string_view what) const {
  owner_.fail(rc, std::string(what) + " \"" + sqlite3_sql(stmt_) + "\"");
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
    std::string msg = "sqlite: cannot open " + path.string() + ": " + sqlite_message(db_, rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    if (auto f = storage_fault_of(rc)) throw StorageFailure(*f, rc, msg);
    throw StoreError(msg);
  }
  sqlite3_extended_result_codes(db_, 1);
}

void Connection::fail(int rc, const std::string& what, const char* errmsg) {
  const std::string msg = "sqlite: " + path_.string() + ": " + (errmsg ? std::string(errmsg) : sqlite_message(db_, rc)) +
                          " in " + what;
  const auto fault = storage_fault_of(rc);
  if (!fault) throw StoreError(msg);
  if (*fault == StorageFault::Corrupt) damaged_ = true;
  throw StorageFailure(*fault, rc, msg);
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
    fail(rc, "\"" + s + "\"", msg.c_str());
  }
}

std::string Connection::scalar(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) fail(rc, "\"" + std::string(sql) + "\"");
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return {};
  if (rc != SQLITE_ROW) fail(rc, "\"" + std::string(sql) + "\"");
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  return p ? std::string(p) : std::string();
}

std::vector<std::string> Connection::column(std::string_view sql, size_t max) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) fail(rc, "\"" + std::string(sql) + "\"");
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
  std::vector<std::string> out;
  while (out.size() < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    out.emplace_back(p ? p : "");
  }
  if (out.size() < max && rc != SQLITE_DONE) fail(rc, "\"" + std::string(sql) + "\"");
  return out;
}

Query Connection::query(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) fail(rc, "preparing \"" + sql + "\"");
    it = cache_.emplace(sql, stmt).first;
  }
  return Query(*this, it->second);
}

int64_t Connection::changes() const { return sqlite3_changes64(db_); }

int64_t Connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

bool Connection::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

Transaction::Transaction(Connection& db, Kind kind) : db_(db) {
  if (kind == Kind::Write && db_.damaged())
    throw StorageFailure(StorageFault::Corrupt, SQLITE_CORRUPT,
                         db_.path().string() + " was found damaged while in use; writes are refused until mnemod "
                                               "is restarted with --repair");
  // A rollback that failed earlier (the disk was gone) would otherwise make
  // every later BEGIN fail: finish it now.
  if (db_.in_transaction()) db_.exec("ROLLBACK");
  db_.exec(kind == Kind::Write ? "BEGIN IMMEDIATE" : "BEGIN");
}

Transaction::~Transaction() {
  if (done_ || !db_.in_transaction()) return;  // committed, or SQLite already rolled back (I/O error, full disk)
  try {
    db_.exec("ROLLBACK");
  } catch (const StoreError&) {
    // The rollback itself failed (the disk went away): SQLite rolls back
    // the hot journal on the next access; nothing more to do here.
  }
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace mnemo::daemon::store
