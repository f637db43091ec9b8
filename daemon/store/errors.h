#pragma once
// The store's exceptions. Every one carries what was wrong (the table, the
// id, the SQLite message) so the daemon can turn it into an error event or
// an HTTP status without guessing.
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mnemo::daemon::store {

// SQLite failed or a stored value is unreadable. The daemon answers
// `internal` / 500 and keeps serving; failures of the file system or the file
// itself are the more precise StorageFailure below.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What went wrong underneath SQLite, as the client is told it. Full and Io
// usually pass (space freed, device back), so writes are retried as they
// come; Corrupt does not, so the store refuses writes from then on.
enum class StorageFault {
  Full,      // SQLITE_FULL: the disk (or max_page_count) is full
  Io,        // SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_NOLFS: the OS failed a read or write
  Corrupt,   // SQLITE_CORRUPT, SQLITE_NOTADB: the file is damaged
  ReadOnly,  // SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH: the file cannot be written
  Locked,    // SQLITE_BUSY, SQLITE_LOCKED: another process held the file past busy_timeout
};

const char* to_string(StorageFault f);  // "full", "io", ...

// A failure of the storage under the store (see StorageFault); what() keeps
// SQLite's own message and the statement.
class StorageFailure : public StoreError {
 public:
  StorageFailure(StorageFault fault, int sqlite_code, const std::string& what)
      : StoreError(what), fault_(fault), sqlite_code_(sqlite_code) {}
  StorageFault fault() const { return fault_; }
  int sqlite_code() const { return sqlite_code_; }  // extended result code; 0 when none

 private:
  StorageFault fault_;
  int sqlite_code_;
};

// The fault behind an SQLite result code (extended or primary), or none for
// codes that are the caller's error (constraint, misuse, ...).
std::optional<StorageFault> storage_fault_of(int sqlite_code);

// The database failed `PRAGMA quick_check` (or could not even be read) when
// opened: nothing was written to it. problems() are quick_check's lines.
class DamagedDatabase : public StoreError {
 public:
  DamagedDatabase(const std::string& what, std::vector<std::string> problems)
      : StoreError(what), problems_(std::move(problems)) {}
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// An id that is not in the store: a session, program, tool call or turn.
class NotFound : public StoreError {
 public:
  using StoreError::StoreError;
};

// The operation contradicts what is stored: an id that already exists, or
// ending a program or tool call that has already ended.
class Conflict : public StoreError {
 public:
  using StoreError::StoreError;
};

// A record the store refuses: an unknown role or status, an end before its
// start.
class InvalidRecord : public StoreError {
 public:
  using StoreError::StoreError;
};

// The database was written by a newer mnemod: its schema version is above
// the newest this code knows. Nothing was changed in the file.
class SchemaTooNew : public StoreError {
 public:
  using StoreError::StoreError;
};

}  // namespace mnemo::daemon::store
