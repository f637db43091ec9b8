#pragma once

#include <stdexcept>

namespace mnemo::engine {

// Every failure to load or apply a tokenizer or template; the message names
// the file and field (or the input) that was wrong.
class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace mnemo::engine
