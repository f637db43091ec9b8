#pragma once
// A fresh directory per test, removed afterwards, and small record makers.
#include <filesystem>
#include <string>

#include "daemon/store/records.h"

namespace mnemo::daemon::store::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path db() const { return path_ / "data" / "mnemo.db"; }

 private:
  std::filesystem::path path_;
};

SessionRecord make_session(const std::string& id, int64_t created_at);
MessageRecord make_message(Role role, const std::string& content, int64_t created_at);

}  // namespace mnemo::daemon::store::testing
