#include "daemon/store/schema.h"

#include <string>

#include "daemon/store/connection.h"
#include "daemon/store/errors.h"

namespace mnemo::daemon::store {

namespace {

// Version 1: sessions with their messages; programs and tool calls with
// their timings. Child rows go with their session or program.
constexpr const char* kV1 = R"sql(
CREATE TABLE sessions (
  id            TEXT PRIMARY KEY,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  model         TEXT NOT NULL DEFAULT '',
  system_prompt TEXT NOT NULL DEFAULT '',
  sampling      TEXT,
  tools         TEXT,
  metadata      TEXT
);
CREATE INDEX sessions_by_creation ON sessions (created_at, id);

CREATE TABLE messages (
  session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  role         TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  content      TEXT NOT NULL,
  tool_calls   TEXT,
  tool_call_id TEXT,
  name         TEXT,
  created_at   INTEGER NOT NULL,
  usage        TEXT,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;

CREATE TABLE programs (
  id         TEXT PRIMARY KEY,
  session_id TEXT REFERENCES sessions (id) ON DELETE CASCADE,
  job_id     TEXT,
  started_at INTEGER NOT NULL,
  ended_at   INTEGER,
  metadata   TEXT
);
CREATE INDEX programs_by_session ON programs (session_id, started_at);

CREATE TABLE tool_calls (
  id         TEXT PRIMARY KEY,
  program_id TEXT REFERENCES programs (id) ON DELETE CASCADE,
  session_id TEXT REFERENCES sessions (id) ON DELETE CASCADE,
  name       TEXT NOT NULL,
  arguments  TEXT,
  started_at INTEGER NOT NULL,
  ended_at   INTEGER,
  status     TEXT CHECK (status IN ('ok', 'error')),
  result     TEXT
);
CREATE INDEX tool_calls_by_program ON tool_calls (program_id);
CREATE INDEX tool_calls_by_session ON tool_calls (session_id);
)sql";

// Version 2: Continuum's per-request fields as turns of a program, and the
// indexes the TTL policy and the HTTP path read by (durations of one tool,
// the program of a job_id).
constexpr const char* kV2 = R"sql(
CREATE TABLE turns (
  id             INTEGER PRIMARY KEY,
  program_id     TEXT NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
  job_id         TEXT,
  is_last_step   INTEGER NOT NULL DEFAULT 0,
  this_func_call TEXT,
  last_func_call TEXT,
  started_at     INTEGER NOT NULL,
  ended_at       INTEGER
);
CREATE INDEX turns_by_program ON turns (program_id, id);
CREATE INDEX tool_calls_by_name ON tool_calls (name, ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX programs_by_job ON programs (job_id, started_at) WHERE job_id IS NOT NULL;
)sql";

// Version 3: what the TTL policy learned (tool durations, turn counts of
// finished programs), one JSON document per policy, so a restart does not
// send Continuum back to its cold start.
constexpr const char* kV3 = R"sql(
CREATE TABLE policy_state (
  name       TEXT PRIMARY KEY,
  json       TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Version 4: OpenAI Responses API responses. A chain of responses
// (previous_response_id) is a session: a response records which of the
// session's messages were its input and its output, and the response object
// as it was returned.
constexpr const char* kV4 = R"sql(
CREATE TABLE responses (
  id          TEXT PRIMARY KEY,
  session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  previous_id TEXT,
  input_from  INTEGER NOT NULL,
  output_from INTEGER NOT NULL,
  output_to   INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  json        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX responses_by_session ON responses (session_id);
)sql";

// Version 5: a session's memory setting (docs/protocol.md, session.create
// "memory"): the policy its history is compressed with, and the budget.
// NULL for sessions created before it: the full history, as then.
constexpr const char* kV5 = R"sql(
ALTER TABLE sessions ADD COLUMN memory TEXT;
)sql";

// Version 6: an episodic session's episode index (memory/episodes
// EpisodeIndex::to_json: windows, embedder state, centroids, assignment),
// so its episodes survive a restart; the per-episode caches are rebuilt.
constexpr const char* kV6 = R"sql(
CREATE TABLE session_episodes (
  session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
  json       TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
)sql";

constexpr Migration kMigrations[] = {
    {1, "sessions, messages, programs, tool calls", kV1},
    {2, "turns; indexes by tool name and job id", kV2},
    {3, "policy state (TTL statistics)", kV3},
    {4, "Responses API responses", kV4},
    {5, "session memory settings", kV5},
    {6, "session episode indexes", kV6},
};

int read_version(Connection& db) { return std::stoi(db.scalar("PRAGMA user_version")); }

void refuse_if_newer(Connection& db, int found) {
  if (found > latest_schema_version())
    throw SchemaTooNew(db.path().string() + ": schema version " + std::to_string(found) +
                       " was written by a newer mnemod; this one understands up to version " +
                       std::to_string(latest_schema_version()) + ". Upgrade mnemod or use another --data-dir.");
}

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

int latest_schema_version() { return kMigrations[std::size(kMigrations) - 1].version; }

int migrate(Connection& db) {
  const int found = read_version(db);
  refuse_if_newer(db, found);
  for (const Migration& m : kMigrations) {
    // The version is read again under the write lock: another process may
    // have migrated the file since.
    Transaction tx(db);
    int now = read_version(db);
    refuse_if_newer(db, now);
    if (now >= m.version) continue;
    if (now != m.version - 1)
      throw StoreError(db.path().string() + ": schema version " + std::to_string(now) + " has no step to " +
                       std::to_string(m.version));
    db.exec(m.sql);
    db.exec("PRAGMA user_version = " + std::to_string(m.version));
    tx.commit();
  }
  return found;
}

}  // namespace mnemo::daemon::store
