#include "daemon/store/errors.h"

#include <sqlite3.h>

namespace mnemo::daemon::store {

const char* to_string(StorageFault f) {
  switch (f) {
    case StorageFault::Full: return "full";
    case StorageFault::Io: return "io";
    case StorageFault::Corrupt: return "corrupt";
    case StorageFault::ReadOnly: return "read_only";
    case StorageFault::Locked: return "locked";
  }
  return "io";
}

std::optional<StorageFault> storage_fault_of(int sqlite_code) {
  switch (sqlite_code & 0xff) {  // the primary code of an extended one
    case SQLITE_FULL: return StorageFault::Full;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOLFS:
    case SQLITE_PROTOCOL: return StorageFault::Io;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return StorageFault::Corrupt;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return StorageFault::ReadOnly;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return StorageFault::Locked;
    default: return std::nullopt;
  }
}

}  // namespace mnemo::daemon::store
