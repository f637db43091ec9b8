// The whole assistant answer as one JSON value (OpenAI's response_format):
// a JSON text under a schema's grammar or any JSON object, then an end
// token. Nothing comes before the value; the answer ends when the value is
// whole and nothing can extend it, or at one of end_tokens.
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/constrain/grammar.h"
#include "engine/constrain/grammar_constraint.h"

namespace mnemo::engine {

// The grammar of the answer: `schema` compiled with `options` (strict for
// structured outputs), or any JSON object when schema is null. Throws
// SchemaError naming the schema path at fault.
std::shared_ptr<const Grammar> compile_json_output(const nlohmann::ordered_json* schema, const SchemaOptions& options,
                                                   GrammarLimits limits = {});

// A constraint over a compiled answer grammar (shared by requests).
std::unique_ptr<GrammarConstraint> make_json_output_constraint(std::shared_ptr<const TokenTrie> vocab,
                                                               std::shared_ptr<const Grammar> grammar,
                                                               std::vector<int32_t> end_tokens);

}  // namespace mnemo::engine
