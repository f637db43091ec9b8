#pragma once
// Streams generated text while watching for stop strings: text that might be
// the start of a stop string is held back until it is known not to be.
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::engine {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Appends text; returns what can be released now. After a stop string is
  // found, stopped() is true and the stop string and all after it are dropped.
  std::string push(std::string_view text);
  // Releases whatever is held back (end of generation without a stop).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace mnemo::engine
