#pragma once
// Which agent program each response belongs to. A program is a chain of
// turns separated by tool calls; the TTL policy keeps its KV across them.
//
// Sources, strongest first:
//  - explicit: a key from the client (WebSocket program_id, HTTP job_id);
//  - inferred, for clients that send nothing (stock OpenAI SDKs): a turn
//    that ended in tool calls leaves its conversation's tokens (prompt and
//    generated) in a bounded table; the next request with the same cache
//    salt whose prompt extends that conversation is the program's next turn;
//  - none: a request that neither names a program nor extends a pinned
//    conversation, and cannot call tools, is a one-turn program of its own
//    (engine id 0, never merged with anything).
// Pure bookkeeping: no engine, no policy. Thread-safe.
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/app/response_spec.h"

namespace mnemo::daemon::app {

using Clock = std::chrono::steady_clock;

enum class ProgramSource { None, Explicit, Inferred };
const char* to_string(ProgramSource s);

// One arriving request, as the tracker placed it.
struct TurnStart {
  uint64_t program = 0;  // engine program id; 0: a one-turn program of its own
  ProgramSource source = ProgramSource::None;
  int turn = 0;  // 0 for a program's first turn
  Clock::time_point program_arrival;  // the program's first arrival
  Clock::time_point arrival;          // this turn's
  bool last_step = false;             // known to be the program's last turn
  uint64_t salt = 0;                  // the request's cache salt
  // Turns after the first: what the previous turn left.
  std::string prev_tool;       // the tool it ended calling ("" if none)
  int64_t prev_kv_tokens = 0;  // tokens of its KV in full blocks that this prompt could reuse
  // The server-side gap from the previous turn's end to this arrival: the
  // tool's duration, when the client did not report the exact one.
  std::optional<double> tool_seconds;
  int64_t matched_tokens = 0;  // inferred: tokens of the pinned conversation this prompt extends
};

// What a finished turn ended.
struct TurnEnd {
  bool program_ended = false;
  int turns = 0;  // turns the program served (when it ended)
};

// A tool run the client reported with tool.start / tool.end.
struct ToolTiming {
  std::string name;
  double seconds = 0;
  uint64_t program = 0;  // 0: not inside a known program
};

struct ProgramTrackerOptions {
  int64_t block_size = 16;  // the engine's KV block: only full blocks are reused
  // Inferred conversations: at most this many, holding at most this many
  // tokens together (oldest dropped first), each dropped once older than its
  // pin plus the grace (its client did not come back).
  size_t max_inferred = 4096;
  int64_t max_inferred_tokens = int64_t(8) << 20;
  double inferred_grace_seconds = 300;
  // Explicit programs a client never ended: dropped when idle this long, or
  // the least recently active first past the count.
  size_t max_programs = 65536;
  double idle_program_seconds = 3600;
  size_t max_running_tools = 4096;
};

class ProgramTracker {
 public:
  explicit ProgramTracker(ProgramTrackerOptions opt = {});

  // A request arrives. may_call_tools: it offers tools (a turn without them
  // cannot end in a tool call, so it starts no inferred program).
  TurnStart arrive(const ProgramRef& ref, std::span<const int32_t> prompt, uint64_t salt, bool may_call_tools,
                   Clock::time_point now);
  // The turn ended. called_tool: it ended in a tool call and is not the last
  // step (its KV is kept for pin_seconds); tool: the call's name.
  // conversation: prompt then generated tokens (read only for inferred
  // programs). A program that ends is forgotten.
  TurnEnd finish(const TurnStart& t, bool called_tool, const std::string& tool, std::span<const int32_t> prompt,
                 std::span<const int32_t> generated, double pin_seconds, Clock::time_point now);

  // WebSocket program.begin / program.end. end() returns the program's id
  // and turns, nullopt for an unknown key.
  uint64_t begin(const std::string& key, Clock::time_point now);
  std::optional<std::pair<uint64_t, int>> end(const std::string& key);

  // tool.start / tool.end; a tool reported inside a program replaces the
  // server-side gap as that program's tool duration.
  void tool_started(const std::string& call_id, const std::string& name, const std::string& program_key,
                    Clock::time_point now);
  std::optional<ToolTiming> tool_ended(const std::string& call_id, Clock::time_point now);

  size_t programs() const;
  size_t inferred() const;
  int64_t inferred_tokens() const;

 private:
  struct Program {
    uint64_t id = 0;
    std::string key;  // explicit programs only
    Clock::time_point arrival, last_active;
    int turns = 0;
    int running = 0;
    std::optional<Clock::time_point> last_end;
    std::string last_tool;
    int64_t last_tokens = 0;     // prompt + generated of the last finished turn
    bool tool_reported = false;  // exact tool timing since the last turn ended
  };
  struct Inferred {
    uint64_t program = 0;
    uint64_t salt = 0;
    size_t prompt_len = 0;
    std::vector<int32_t> tokens;  // prompt then generated
    Clock::time_point expires;
  };
  struct RunningTool {
    std::string name;
    uint64_t program = 0;
    Clock::time_point start;
  };

  Program& create(const std::string& key, Clock::time_point now);
  TurnStart next_turn(Program& p, std::span<const int32_t> prompt, Clock::time_point now);
  std::list<Inferred>::iterator match(std::span<const int32_t> prompt, uint64_t salt, int64_t& common);
  void drop_inferred(std::list<Inferred>::iterator it, bool forget_program);
  void purge(Clock::time_point now);
  int64_t full_blocks(int64_t tokens) const { return tokens / opt_.block_size * opt_.block_size; }

  ProgramTrackerOptions opt_;
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Program> programs_;
  std::unordered_map<std::string, uint64_t> by_key_;
  std::list<Inferred> inferred_;  // oldest first
  int64_t inferred_tokens_ = 0;
  std::unordered_map<std::string, RunningTool> tools_;
  Clock::time_point last_purge_;
};

}  // namespace mnemo::daemon::app
