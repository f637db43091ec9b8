#pragma once
// The one error mnemod's configuration throws: a bad flag, environment
// variable or value. The message names the flag or variable and the value.
#include <stdexcept>

namespace mnemo::daemon::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace mnemo::daemon::config
