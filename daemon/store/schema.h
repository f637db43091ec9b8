#pragma once
// The versioned schema. PRAGMA user_version holds the number of migration
// steps applied; each step runs in its own transaction together with the
// version bump, so a crash mid-migration leaves the previous version intact.
#include <span>

namespace mnemo::daemon::store {

class Connection;

struct Migration {
  int version;      // user_version after this step
  const char* what; // one line for the log
  const char* sql;
};

// Every step ever shipped, oldest first. Append new steps; never edit one
// that has been released, since databases in the field already ran it.
std::span<const Migration> migrations();
int latest_schema_version();

// Applies the missing steps. Returns the version found on disk before.
// Throws SchemaTooNew, changing nothing, when the file is newer than the code.
int migrate(Connection& db);

}  // namespace mnemo::daemon::store
