#include "daemon/store/store.h"

#include <chrono>
#include <system_error>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "daemon/store/connection.h"
#include "daemon/store/integrity.h"
#include "daemon/store/schema.h"

namespace mnemo::daemon::store {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  if (auto l = spdlog::get("store")) return l;
  try {
    auto def = spdlog::default_logger();
    auto l = std::make_shared<spdlog::logger>("store", def->sinks().begin(), def->sinks().end());
    l->set_level(def->level());
    spdlog::register_logger(l);
    return l;
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("store");  // another thread registered it first
  }
}

}  // namespace

Store::Store(const std::filesystem::path& path, StoreOptions opt) : path_(path) {
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) throw StoreError("cannot create " + path.parent_path().string() + ": " + ec.message());
  }
  int found = 0;
  try {
    db_ = std::make_unique<Connection>(path);
    db_->exec("PRAGMA busy_timeout = " + std::to_string(opt.busy_timeout_ms));
    // Before anything is written: a write on top of damaged pages spreads
    // the damage, and every later read of them fails.
    const auto t0 = std::chrono::steady_clock::now();
    if (auto problems = quick_check(*db_); !problems.empty()) {
      const std::string what =
          path.string() + " is damaged (PRAGMA quick_check: " + problems.front() +
          (problems.size() > 1 ? ", and " + std::to_string(problems.size() - 1) + " more findings" : "") + ")";
      throw DamagedDatabase(what, std::move(problems));
    }
    logger()->debug("{}: quick_check ok in {} ms", path.string(),
                    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
    // WAL is a property of the file; this also checks the file is a database.
    std::string mode = db_->scalar("PRAGMA journal_mode = WAL");
    if (mode != "wal") throw StoreError(path.string() + ": cannot switch to WAL mode (journal_mode is '" + mode + "')");
    db_->exec(opt.durability == Durability::Full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    db_->exec("PRAGMA foreign_keys = ON");
    if (opt.max_page_count > 0) db_->scalar("PRAGMA max_page_count = " + std::to_string(opt.max_page_count));
    found = migrate(*db_);
  } catch (const StorageFailure& e) {
    if (e.fault() != StorageFault::Corrupt) throw;
    throw DamagedDatabase(path.string() + " is damaged (" + e.what() + ")", {e.what()});
  }
  int now = latest_schema_version();
  if (found != now)
    logger()->info("{}: schema migrated from version {} to {}", path.string(), found, now);
  else
    logger()->debug("{}: opened at schema version {}", path.string(), now);
}

std::unique_ptr<Store> Store::open(const std::filesystem::path& path, StoreOptions opt) {
  return std::make_unique<Store>(path, opt);
}

Store::~Store() = default;

int Store::schema_version() {
  std::lock_guard lock(mu_);
  return std::stoi(db_->scalar("PRAGMA user_version"));
}

std::string Store::journal_mode() {
  std::lock_guard lock(mu_);
  return db_->scalar("PRAGMA journal_mode");
}

void Store::require_session(std::string_view id) {
  auto q = db_->query("SELECT 1 FROM sessions WHERE id = ?");
  q.bind_text(1, id);
  if (!q.next()) throw NotFound("session '" + std::string(id) + "' not found");
}

void Store::require_program(std::string_view id) {
  auto q = db_->query("SELECT 1 FROM programs WHERE id = ?");
  q.bind_text(1, id);
  if (!q.next()) throw NotFound("program '" + std::string(id) + "' not found");
}

}  // namespace mnemo::daemon::store
