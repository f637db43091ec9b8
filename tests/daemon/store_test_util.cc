#include "store_test_util.h"

#include <unistd.h>

#include <atomic>
#include <stdexcept>

namespace mnemo::daemon::store::testing {

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("mnemo_store_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

SessionRecord make_session(const std::string& id, int64_t created_at) {
  SessionRecord s;
  s.id = id;
  s.created_at = created_at;
  s.model = "tiny-llama";
  s.system_prompt = "You are terse.";
  s.sampling = {{"temperature", 0.5}, {"top_p", 0.9}};
  s.tools = nlohmann::json::array({{{"type", "function"}, {"function", {{"name", "search"}}}}});
  s.metadata = {{"owner", "test"}};
  return s;
}

MessageRecord make_message(Role role, const std::string& content, int64_t created_at) {
  MessageRecord m;
  m.role = role;
  m.content = content;
  m.created_at = created_at;
  return m;
}

}  // namespace mnemo::daemon::store::testing
