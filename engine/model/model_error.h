#pragma once
#include <stdexcept>
#include <string>

namespace mnemo::engine {

// A model file that cannot be used; the message names the file and the
// tensor or field that is wrong.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace mnemo::engine
