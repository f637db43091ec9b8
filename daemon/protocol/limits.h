#pragma once
// The bounds of docs/protocol.md's "Limits" table.
#include <cstddef>
#include <cstdint>

namespace mnemo::daemon::protocol {

inline constexpr size_t kDefaultMaxFrameBytes = size_t(4) << 20;  // mnemod's --max-frame-bytes default
inline constexpr int kMaxDepth = 64;                 // nesting of objects and arrays
inline constexpr size_t kMaxElements = size_t(1) << 18;  // values in one message (containers + separators)
inline constexpr size_t kMaxIdBytes = 128;           // event_id and every id
inline constexpr size_t kMaxToolNameChars = 64;      // tool function names
inline constexpr size_t kMaxNameBytes = 128;         // message name, tool.start name
inline constexpr size_t kMaxStopStrings = 16;
inline constexpr size_t kMaxStopBytes = 256;
inline constexpr size_t kMaxTools = 128;
// Tool definitions are rendered into every prompt of a session: bounded so
// that rendering stays cheap and linear (a schema's indentation grows with
// its depth, its lines with its elements).
inline constexpr int kMaxSchemaDepth = 32;            // JSON nesting inside one tool's parameters
inline constexpr size_t kMaxSchemaElements = 4096;    // values inside one tool's parameters
inline constexpr size_t kMaxToolsBytes = 256 << 10;   // all tool definitions, as compact JSON
inline constexpr size_t kMaxAppendMessages = 256;
inline constexpr size_t kMaxToolCalls = 64;
inline constexpr size_t kMaxMetadataBytes = 16384;  // as compact JSON
inline constexpr int64_t kMaxListLimit = 1000;
inline constexpr int64_t kDefaultListLimit = 100;
// Rounds of server-side tool calls in one response.create.
inline constexpr int64_t kDefaultMaxToolTurns = 8;
inline constexpr int64_t kMaxToolTurns = 64;
inline constexpr int64_t kMaxTokensLimit = int64_t(1) << 20;  // max_tokens and top_k

}  // namespace mnemo::daemon::protocol
