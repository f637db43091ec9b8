#pragma once
// mnemod's persistent state in one SQLite file (WAL mode): sessions and
// their messages, agent programs, tool calls with their timings, turns,
// and what the memory policies learned (policy_state).
// One connection guarded by a mutex, so every method may be called from any
// thread; each write is one transaction, durable when the call returns.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/store/errors.h"
#include "daemon/store/records.h"

namespace mnemo::daemon::store {

class Connection;

enum class Durability {
  // synchronous=FULL: every commit fsyncs the WAL; survives power loss.
  Full,
  // synchronous=NORMAL: survives a crash or kill -9 of mnemod, but an OS
  // crash or power loss may drop the last commits.
  Process,
};

struct StoreOptions {
  Durability durability = Durability::Full;
  int busy_timeout_ms = 5000;  // waiting for another process holding the file
  // 0: no limit. Otherwise writes that would grow the file past this many
  // pages fail as on a full disk (StorageFault::Full): a quota, and how the
  // tests fill a disk without mounting one.
  int64_t max_page_count = 0;
};

class Store {
 public:
  // Creates the parent directories and the file when missing, checks it
  // (PRAGMA quick_check), turns on WAL and foreign keys, and migrates the
  // schema. Throws DamagedDatabase for a file that fails the check (see
  // integrity.h for repair()), SchemaTooNew for a file from a newer mnemod,
  // StoreError when it cannot be opened.
  explicit Store(const std::filesystem::path& path, StoreOptions opt = {});
  static std::unique_ptr<Store> open(const std::filesystem::path& path, StoreOptions opt = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& path() const { return path_; }
  int schema_version();
  std::string journal_mode();  // "wal" once open

  // Sessions. Conflict when the id exists; NotFound for unknown ids, except
  // get_session, which returns nullopt.
  void create_session(const SessionRecord& s);
  std::optional<SessionRecord> get_session(std::string_view id);
  // Oldest first (created_at, then id); `after` is the id of the last
  // session of the previous page.
  std::vector<SessionRecord> list_sessions(std::size_t limit, std::optional<std::string_view> after = {});
  int64_t count_sessions();
  // Also deletes the session's messages, programs, tool calls and turns.
  void delete_session(std::string_view id);
  void update_session_metadata(std::string_view id, const nlohmann::ordered_json& metadata, int64_t updated_at);
  void touch_session(std::string_view id, int64_t updated_at);

  // Messages. Returns the sequence number given to the message (1, 2, ...
  // per session); m.seq is ignored. Bumps the session's updated_at.
  int64_t append_message(std::string_view session_id, const MessageRecord& m);
  std::vector<MessageRecord> history(std::string_view session_id);  // by seq
  // One page read backwards: the newest `limit` messages with seq < before_seq,
  // newest first, handed to `take` as they are read; reading stops early when
  // take returns false, so a caller with a byte budget holds no more rows than
  // it keeps. NotFound for an unknown session.
  void history_before(std::string_view session_id, int64_t before_seq, std::size_t limit,
                      const std::function<bool(MessageRecord&&)>& take);
  int64_t message_count(std::string_view session_id);

  // Programs. A given session_id must exist (NotFound).
  void begin_program(const ProgramRecord& p);
  void end_program(std::string_view id, int64_t ended_at);  // Conflict if ended
  std::optional<ProgramRecord> get_program(std::string_view id);
  // The most recently started program with this Continuum job_id.
  std::optional<ProgramRecord> find_program_by_job(std::string_view job_id);
  std::vector<ProgramRecord> session_programs(std::string_view session_id);  // by start

  // Tool calls. A given program_id or session_id must exist (NotFound).
  void start_tool_call(const ToolCallRecord& c);
  // Conflict if already ended; InvalidRecord if ended_at < started_at.
  void end_tool_call(std::string_view id, int64_t ended_at, ToolStatus status, std::string_view result);
  std::optional<ToolCallRecord> get_tool_call(std::string_view id);
  // Durations in ms of the last `limit` finished calls of a tool, most
  // recently ended first; what the TTL policy learns from.
  std::vector<int64_t> tool_durations(std::string_view name, std::size_t limit);
  std::vector<std::string> tool_names();  // tools with a finished call, sorted

  // Turns: Continuum's per-request fields. Returns the id given to the turn.
  int64_t record_turn(const TurnRecord& t);
  void end_turn(int64_t id, int64_t ended_at);
  std::vector<TurnRecord> program_turns(std::string_view program_id);  // by id

  // Responses (OpenAI Responses API). save_response appends the response's
  // input and output messages to its session and records it, in one write:
  // acknowledged means all of it is on disk. Sets r's seq ranges.
  void save_response(ResponseRecord& r, std::span<const MessageRecord> input, std::span<const MessageRecord> output);
  std::optional<ResponseRecord> get_response(std::string_view id);
  // The record only; the session and its messages stay. NotFound if unknown.
  void delete_response(std::string_view id);
  // A new session holding copies of `from`'s messages with seq < before_seq
  // (a chain continued from a response that is not its session's last).
  void fork_session(const SessionRecord& s, std::string_view from, int64_t before_seq);

  // Policy state: one JSON document per policy name (the TTL policy's
  // statistics), replaced whole by each put.
  std::optional<nlohmann::ordered_json> get_policy_state(std::string_view name);
  void put_policy_state(std::string_view name, const nlohmann::ordered_json& state, int64_t updated_at);

  // An episodic session's episode index (session memory), replaced whole by
  // each put; deleted with its session. NotFound from put for an unknown session.
  std::optional<nlohmann::ordered_json> get_session_episodes(std::string_view session_id);
  void put_session_episodes(std::string_view session_id, const nlohmann::ordered_json& state, int64_t updated_at);

 private:
  struct PendingWrite;
  void require_session(std::string_view id);
  void require_program(std::string_view id);
  int64_t insert_message(std::string_view session_id, const MessageRecord& m);  // inside a transaction
  // Runs op inside a write transaction shared with the other writes waiting
  // (group commit: one fsync for all), in a savepoint of its own; rethrows
  // what op threw.
  void grouped_write(const std::function<void()>& op);
  void commit_writes(std::vector<PendingWrite*>& batch);

  std::filesystem::path path_;
  std::mutex mu_;
  std::unique_ptr<Connection> db_;
  // Group commit: appends that arrive while one commits wait and then share
  // the next transaction (one fsync), each in its own savepoint.
  std::mutex append_mu_;
  std::condition_variable append_cv_;
  std::vector<PendingWrite*> appends_;
  bool append_leader_ = false;
};

}  // namespace mnemo::daemon::store
