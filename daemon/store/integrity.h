#pragma once
// Checking a database file and recovering what is readable from a damaged
// one. mnemod refuses to serve from a file that fails the check (a write on
// top of damaged pages can spread the damage) and offers --repair instead.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mnemo::daemon::store {

class Connection;

// PRAGMA quick_check's findings, at most `max`; empty when the file is
// sound. Checks the b-tree structure of every table and index in one pass
// (no index-to-table cross check, so it stays linear in the file size).
// A file too damaged to check at all gives one finding saying why.
std::vector<std::string> quick_check(Connection& db, size_t max = 10);

struct TableRecovery {
  std::string table;
  int64_t copied = 0;    // rows now in the fresh file
  int64_t unreadable = 0;  // damaged regions skipped while reading (each may hide several rows)
  int64_t refused = 0;   // rows read but not insertable (their session or program was lost)
};

struct RepairReport {
  bool needed = false;                    // false: the file passed quick_check and was left alone
  std::vector<std::string> problems;      // quick_check's findings before the repair
  std::filesystem::path damaged_copy;     // where the damaged file now lies
  std::vector<TableRecovery> tables;      // in copy order: sessions, messages, programs, tool_calls, turns
  int64_t sessions_recreated = 0;         // messages whose session row was lost get an empty one
};

// Repairs the database at `path` in place when it fails quick_check: copies
// every readable row, table by table, into a fresh file at the current
// schema version (skipping unreadable pages and rows), renames the damaged
// file (and its -wal/-shm) to `<path>.damaged-<UTC timestamp>`, and moves the
// fresh file to `path`. A missing or sound file is left alone. Throws
// StoreError when the fresh file cannot be written; the damaged one is then
// untouched.
RepairReport repair(const std::filesystem::path& path);

}  // namespace mnemo::daemon::store
