#pragma once
// Decode speed with a long history at a compression ratio against full KV on
// a TinyLlama-shaped model, beside what the bytes read per token predict.
#include <cstdint>
#include <nlohmann/json.hpp>

namespace mnemo::bench::fidelity {

// Generates (once, under the bench directory) the model, fills a `history`-token
// cache with random K,V (decode speed does not depend on the values), times
// decode on it, compacts every layer to history / ratio slots per head, times
// again. Prints a table; returns its numbers.
nlohmann::json large_decode_report(int64_t history, double ratio);

}  // namespace mnemo::bench::fidelity
