#pragma once
// What a client is told when the store fails underneath a request: a
// protocol code (storage_full or storage_error), an HTTP status, and a
// message saying what was not saved and what to do. The full SQLite detail
// (file, statement) goes to the log only.
#include <string>
#include <string_view>

#include "daemon/protocol/error.h"
#include "daemon/store/errors.h"

namespace mnemo::daemon::app {

inline protocol::ErrorCode error_code_for(const store::StorageFailure& e) {
  return e.fault() == store::StorageFault::Full ? protocol::ErrorCode::StorageFull : protocol::ErrorCode::StorageError;
}

// 507 Insufficient Storage for a full disk; the others may pass (503).
inline int http_status_for(const store::StorageFailure& e) {
  return e.fault() == store::StorageFault::Full ? 507 : 503;
}

// `outcome` says what became of the request: "nothing was saved", "the
// response was not saved".
inline std::string storage_message(const store::StorageFailure& e, std::string_view outcome) {
  const std::string what(outcome);
  switch (e.fault()) {
    case store::StorageFault::Full:
      return "the store is full: " + what + "; free disk space under the data dir and retry";
    case store::StorageFault::Io:
      return "the store could not read or write its file (I/O error): " + what + "; retry later";
    case store::StorageFault::Corrupt:
      return "the store's file is damaged: " + what + "; restart mnemod with --repair";
    case store::StorageFault::ReadOnly:
      return "the store's file is read-only: " + what + "; check the data dir's permissions and mount";
    case store::StorageFault::Locked:
      return "the store is locked by another process: " + what + "; retry later";
  }
  return "the store failed: " + what;
}

}  // namespace mnemo::daemon::app
