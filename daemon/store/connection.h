#pragma once
// A thin RAII layer over one SQLite connection: a cache of prepared
// statements, one-use queries that reset their statement when they go out of
// scope (so no read snapshot outlives its query and blocks WAL checkpoints),
// and write transactions. Not thread-safe: Store serialises access.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;
struct sqlite3_stmt;

namespace mnemo::daemon::store {

// One execution of a cached statement. Parameters and columns are 1-based
// and 0-based respectively, as in SQLite.
class Connection;

class Query {
 public:
  Query(Connection& owner, sqlite3_stmt* stmt);
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind_int(int i, int64_t v);
  Query& bind_text(int i, std::string_view v);
  Query& bind_opt_int(int i, const std::optional<int64_t>& v);
  Query& bind_opt_text(int i, const std::optional<std::string>& v);
  Query& bind_json(int i, const nlohmann::ordered_json& v);  // null -> SQL NULL

  bool next();  // steps; true while a row is available
  void run();   // steps to completion; for statements without rows

  bool is_null(int col) const;
  int64_t get_int(int col) const;
  std::string get_text(int col) const;
  std::optional<int64_t> get_opt_int(int col) const;
  std::optional<std::string> get_opt_text(int col) const;
  nlohmann::ordered_json get_json(int col) const;  // SQL NULL -> null

 private:
  [[noreturn]] void fail(int rc, std::string_view what) const;
  Connection& owner_;
  sqlite3_stmt* stmt_;
};

class Connection {
 public:
  // Opens or creates the database file; the parent directory must exist.
  explicit Connection(const std::filesystem::path& path);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs SQL without parameters (one or more statements).
  void exec(std::string_view sql);
  // Runs a one-row, one-column statement (e.g. a PRAGMA) and returns its
  // value as text; empty when it returns no row.
  std::string scalar(std::string_view sql);
  // Every row's first column as text, at most `max` rows (e.g. PRAGMA
  // quick_check's findings).
  std::vector<std::string> column(std::string_view sql, size_t max);
  // Prepares the statement on first use and keeps it for later ones.
  Query query(const std::string& sql);

  int64_t changes() const;  // rows changed by the last statement
  int64_t last_insert_rowid() const;
  bool in_transaction() const;  // a BEGIN has not yet been committed or rolled back
  const std::filesystem::path& path() const { return path_; }
  // SQLite reported the file corrupt since it was opened; Transaction refuses
  // to write from then on, so no write lands on top of damaged pages.
  bool damaged() const { return damaged_; }
  sqlite3* handle() const { return db_; }

  // Throws StorageFailure for a storage fault (see errors.h), else StoreError;
  // `what` says which statement failed.
  [[noreturn]] void fail(int rc, const std::string& what, const char* errmsg = nullptr);

 private:
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  bool damaged_ = false;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// A write transaction begins IMMEDIATE, so a writer takes the lock before it
// reads what it will change; a read transaction (deferred) only pins one
// snapshot for several queries. Rolled back unless commit() ran.
class Transaction {
 public:
  enum class Kind { Write, Read };
  explicit Transaction(Connection& db, Kind kind = Kind::Write);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& db_;
  bool done_ = false;
};

}  // namespace mnemo::daemon::store
