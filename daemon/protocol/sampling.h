#pragma once
// Sampling parameters as the protocol carries them: every field optional,
// so a response's overrides layer field by field over the session's, and
// the session's over the defaults below (docs/protocol.md "Sampling").
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/protocol/json.h"

namespace mnemo::daemon::protocol {

struct Sampling {
  std::optional<double> temperature;         // [0, 2]
  std::optional<double> top_p;               // (0, 1]
  std::optional<int64_t> top_k;              // [0, 2^20]
  std::optional<double> min_p;               // [0, 1]
  std::optional<double> repetition_penalty;  // (0, 10]
  std::optional<int64_t> max_tokens;         // [1, 2^20]; absent: up to the context length
  std::optional<uint64_t> seed;              // absent: random per response
  std::optional<std::vector<std::string>> stop;

  bool operator==(const Sampling&) const = default;
};

inline constexpr double kDefaultTemperature = 1.0;
inline constexpr double kDefaultTopP = 1.0;
inline constexpr int64_t kDefaultTopK = 0;
inline constexpr double kDefaultMinP = 0.0;
inline constexpr double kDefaultRepetitionPenalty = 1.0;

// Each field of `over` that is set replaces the one of `base`.
Sampling merge(const Sampling& base, const Sampling& over);

// Only the fields that are set, in the order of the struct; stop as an array.
Json to_json_value(const Sampling& s);

}  // namespace mnemo::daemon::protocol
