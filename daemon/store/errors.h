#pragma once
// The store's exceptions. Every one carries what was wrong (the table, the
// id, the SQLite message) so the daemon can turn it into an error event or
// an HTTP status without guessing.
#include <stdexcept>
#include <string>

namespace mnemo::daemon::store {

// SQLite failed (I/O error, corrupt file, full disk) or a stored value is
// unreadable. The daemon answers 500 and keeps serving.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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
