#include "plugins/plugin_loader.h"

#include "plugins/logger.h"

#include <dlfcn.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <spdlog/spdlog.h>

#include "mnemo_plugin.h"
#include "plugins/command_provider.h"  // replace_invalid_utf8

namespace mnemo::plugins {

namespace {

constexpr unsigned kOldestAbi = 1, kNewestAbi = MNEMO_PLUGIN_ABI_VERSION;
// Threads one plugin may hold, counting calls that ignored their deadline:
// past this, a plugin that never returns would eat the process.
constexpr int kMaxThreads = 64;

// The plugin reads the host's std::atomic<int> through a plain int pointer.
static_assert(sizeof(std::atomic<int>) == sizeof(int) && std::atomic<int>::is_always_lock_free);

std::shared_ptr<spdlog::logger> logger() { return named_logger("tools"); }

void host_log(const mnemo_host_v1* host, int level, const char* message) {
  const auto& name = *static_cast<const std::string*>(host->host_data);
  const auto lvl = level <= MNEMO_LOG_DEBUG ? spdlog::level::debug
                   : level == MNEMO_LOG_INFO ? spdlog::level::info
                   : level == MNEMO_LOG_WARN ? spdlog::level::warn
                                             : spdlog::level::err;
  logger()->log(lvl, "plugin '{}': {}", name, replace_invalid_utf8(message ? message : ""));
}

// A string the plugin allocated: copied, then handed back to it to free.
std::string take(const mnemo_plugin_v1* api, char* s) {
  std::string out = s ? s : "";
  api->free_string(s);
  return out;
}

const char* code_name(int rc) {
  switch (rc) {
    case MNEMO_ERR_BAD_ARGUMENTS: return "bad arguments";
    case MNEMO_ERR_UNKNOWN_TOOL: return "unknown tool";
    case MNEMO_ERR_CANCELLED: return "cancelled";
    case MNEMO_ERR_NO_MEMORY: return "out of memory";
    default: return "error";
  }
}

// The plugin's list_tools answer. Throws std::invalid_argument saying what is wrong.
std::vector<ToolSpec> parse_tool_list(const std::string& text) {
  Json list;
  try {
    list = Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw std::invalid_argument(std::string("its tool list is not valid JSON: ") + e.what());
  }
  if (!list.is_array()) throw std::invalid_argument("its tool list is not a JSON array");
  std::vector<ToolSpec> specs;
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& t = list[i];
    const std::string at = "its tool list[" + std::to_string(i) + "]";
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || t["name"].get<std::string>().empty())
      throw std::invalid_argument(at + ": expected an object with a non-empty string \"name\"");
    ToolSpec spec;
    spec.name = t["name"];
    for (const auto& s : specs)
      if (s.name == spec.name) throw std::invalid_argument(at + ": tool '" + spec.name + "' listed twice");
    if (t.contains("description")) {
      if (!t["description"].is_string()) throw std::invalid_argument(at + ": \"description\" is not a string");
      spec.description = t["description"];
    }
    if (t.contains("parameters")) {
      if (!t["parameters"].is_object()) throw std::invalid_argument(at + ": \"parameters\" is not an object");
      spec.parameters = t["parameters"];
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace

// Owned jointly by the PluginLibrary and every call thread: whoever lets go
// last shuts the plugin down and unloads it, so never under a running call.
struct PluginLibrary::Loaded {
  std::string name, path;
  mnemo_host_v1 host{};
  void* handle = nullptr;
  const mnemo_plugin_v1* api = nullptr;
  void* state = nullptr;
  bool initialized = false;
  std::mutex serial;  // one call at a time unless the plugin is thread-safe

  ~Loaded() {
    if (initialized) api->shutdown(state);
    if (handle) dlclose(handle);
    if (initialized) logger()->info("plugin '{}' shut down and unloaded", name);
  }
};

struct PluginLibrary::Call {
  std::atomic<int> cancel{0};  // the flag the plugin reads
  std::mutex mu;
  std::condition_variable_any cv;
  bool done = false, stopping = false;
  int rc = MNEMO_OK, is_error = 0;
  std::string result;
};

struct PluginLibrary::Inflight {
  std::mutex mu;
  std::condition_variable cv;
  int threads = 0;
};

PluginLibrary::PluginLibrary(PluginConfig config, std::chrono::milliseconds stop_grace)
    : config_(std::move(config)), stop_grace_(stop_grace), inflight_(std::make_shared<Inflight>()) {}

PluginLibrary::~PluginLibrary() { stop(); }

std::string PluginLibrary::where() const { return "plugin '" + config_.name + "' (" + config_.path.string() + ")"; }

void PluginLibrary::start() {
  std::lock_guard lock(mu_);
  if (loaded_) return;
  // A bare file name would make dlopen search the library path instead.
  const auto path = config_.path.has_parent_path() ? config_.path : std::filesystem::absolute(config_.path);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw std::runtime_error(where() + ": no such file");
  auto lib = std::make_shared<Loaded>();
  lib->name = config_.name;
  lib->path = path.string();
  lib->host = mnemo_host_v1{sizeof(mnemo_host_v1), MNEMO_PLUGIN_ABI_VERSION, &host_log, &lib->name};
  dlerror();
  lib->handle = dlopen(lib->path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib->handle) throw std::runtime_error(where() + ": cannot load: " + dlerror());
  void* sym = dlsym(lib->handle, MNEMO_PLUGIN_ENTRY_SYMBOL);
  if (!sym) throw std::runtime_error(where() + ": not a mnemo plugin (no " MNEMO_PLUGIN_ENTRY_SYMBOL " symbol)");
  mnemo_plugin_entry_fn entry;
  std::memcpy(&entry, &sym, sizeof entry);
  const mnemo_plugin_v1* api = entry(&lib->host);
  if (!api) throw std::runtime_error(where() + ": the plugin declined this host (plugin ABI " +
                                     std::to_string(kNewestAbi) + ")");
  const std::string supported = std::to_string(kOldestAbi) + ".." + std::to_string(kNewestAbi);
  if (api->abi_version > kNewestAbi)
    throw std::runtime_error(where() + ": built for plugin ABI " + std::to_string(api->abi_version) +
                             ", newer than this mnemod supports (" + supported + "): update mnemod");
  if (api->abi_version < kOldestAbi)
    throw std::runtime_error(where() + ": built for plugin ABI " + std::to_string(api->abi_version) +
                             ", older than this mnemod supports (" + supported +
                             "): rebuild it against this mnemod's mnemo_plugin.h");
  if (api->struct_size < sizeof(mnemo_plugin_v1) || !api->init || !api->list_tools || !api->call ||
      !api->free_string || !api->shutdown)
    throw std::runtime_error(where() + ": its mnemo_plugin_v1 table is incomplete");
  lib->api = api;

  char* error = nullptr;
  int rc = api->init(&lib->host, config_.config.dump().c_str(), &lib->state, &error);
  if (rc != MNEMO_OK)
    throw std::runtime_error(where() + ": init failed (" + code_name(rc) + "): " +
                             replace_invalid_utf8(take(api, error)));
  lib->initialized = true;
  char* list = nullptr;
  error = nullptr;
  rc = api->list_tools(lib->state, &list, &error);
  const std::string list_text = take(api, list), list_error = take(api, error);
  if (rc != MNEMO_OK)
    throw std::runtime_error(where() + ": listing its tools failed (" + code_name(rc) + "): " +
                             replace_invalid_utf8(list_error));
  try {
    tools_ = parse_tool_list(list_text);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(where() + ": " + e.what());
  }
  std::string names;
  for (const auto& t : tools_) names += (names.empty() ? "" : ", ") + t.name;
  logger()->info("plugin '{}' loaded from {}: ABI {}, {}, tools: {}", config_.name, lib->path, api->abi_version,
                 (api->flags & MNEMO_PLUGIN_THREAD_SAFE) ? "thread-safe" : "one call at a time", names);
  loaded_ = std::move(lib);
  stopped_ = false;
}

std::vector<ToolSpec> PluginLibrary::tools() const {
  std::lock_guard lock(mu_);
  return tools_;
}

int PluginLibrary::calls_in_plugin() const {
  std::lock_guard lock(inflight_->mu);
  return inflight_->threads;
}

namespace {

// On the call's own thread: everything that touches the plugin.
void run_in_plugin(PluginLibrary::Loaded& lib, PluginLibrary::Call& call, const std::string& tool,
                   const std::string& args, Clock::time_point deadline) {
  std::unique_lock<std::mutex> serial;
  if (!(lib.api->flags & MNEMO_PLUGIN_THREAD_SAFE)) serial = std::unique_lock(lib.serial);
  int rc = MNEMO_ERR_CANCELLED, is_error = 0;
  std::string text;
  if (!call.cancel.load()) {  // not given up on while it waited for its turn
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    char* result = nullptr;
    rc = lib.api->call(lib.state, tool.c_str(), args.c_str(), long(std::max<int64_t>(ms, 1)),
                       reinterpret_cast<const volatile int*>(&call.cancel), &result, &is_error);
    text = take(lib.api, result);
  }
  std::lock_guard lock(call.mu);
  call.rc = rc;
  call.is_error = is_error;
  call.result = std::move(text);
  call.done = true;
}

}  // namespace

ToolResult PluginLibrary::call(const std::string& tool, const Json& arguments, const CallLimits& limits,
                               std::stop_token cancel) {
  const std::string what = "plugin '" + config_.name + "' tool '" + tool + "'";
  auto c = std::make_shared<Call>();
  std::shared_ptr<Loaded> lib;
  {
    std::lock_guard lock(mu_);
    if (stopped_ || !loaded_) return failed(Failure::Unavailable, "plugin '" + config_.name + "' is not running");
    bool known = false;
    for (const auto& t : tools_) known = known || t.name == tool;
    if (!known) return failed(Failure::Unknown, "plugin '" + config_.name + "' has no tool '" + tool + "'");
    lib = loaded_;
    waiting_.insert(c);
  }
  auto forget = [&] {
    std::lock_guard lock(mu_);
    waiting_.erase(c);
  };
  const auto allowed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(limits.deadline - Clock::now());
  {
    std::lock_guard lock(inflight_->mu);
    if (inflight_->threads >= kMaxThreads) {
      forget();
      return failed(Failure::Busy, what + ": the plugin still runs " + std::to_string(kMaxThreads) +
                                       " calls (some past their deadline)");
    }
    ++inflight_->threads;
  }
  const std::string args = (arguments.is_null() ? Json::object() : arguments).dump(-1, ' ', false, Json::error_handler_t::replace);
  try {
    std::thread([lib, c, inflight = inflight_, tool, args, deadline = limits.deadline]() mutable {
      run_in_plugin(*lib, *c, tool, args, deadline);
      c->cv.notify_all();
      lib.reset();  // may shut the plugin down and unload it: no thread is inside any more
      {
        std::lock_guard lock(inflight->mu);
        --inflight->threads;
      }
      inflight->cv.notify_all();
    }).detach();
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(inflight_->mu);
      --inflight_->threads;
    }
    forget();
    return failed(Failure::Unavailable, what + ": cannot start a thread: " + e.what());
  }

  std::unique_lock lock(c->mu);
  c->cv.wait_until(lock, cancel, limits.deadline, [&] { return c->done || c->stopping; });
  const bool done = c->done, stopping = c->stopping;
  if (!done) c->cancel.store(1);  // the plugin may go on for a while; its thread is counted until it returns
  const int rc = c->rc, is_error = c->is_error;
  std::string result = std::move(c->result);
  lock.unlock();
  forget();

  // The plugin may have seen stop()'s cancel flag and answered before this
  // wait woke: still the stop's doing, not the caller's.
  if (stopping && (!done || rc == MNEMO_ERR_CANCELLED))
    return failed(Failure::Unavailable, what + ": the plugin is stopping");
  if (!done && cancel.stop_requested()) return failed(Failure::Cancelled, what + " was cancelled");
  if (!done) {
    logger()->warn("{} timed out after {} ms; asked it to cancel", what, allowed_ms.count());
    return failed(Failure::Timeout, what + " timed out after " + std::to_string(allowed_ms.count()) +
                                        " ms; the plugin was asked to cancel");
  }
  if (result.size() > limits.max_output_bytes)
    return failed(Failure::TooLarge, what + " returned " + std::to_string(result.size()) + " bytes, over the cap of " +
                                         std::to_string(limits.max_output_bytes));
  if (rc == MNEMO_OK) return ToolResult{replace_invalid_utf8(result), is_error != 0, Failure::None};
  if (rc == MNEMO_ERR_UNKNOWN_TOOL) return failed(Failure::Unknown, what + ": " + replace_invalid_utf8(result));
  if (rc == MNEMO_ERR_CANCELLED) return failed(Failure::Cancelled, what + " cancelled: " + replace_invalid_utf8(result));
  return ToolResult{what + " failed (" + code_name(rc) + "): " + replace_invalid_utf8(result), true, Failure::None};
}

void PluginLibrary::stop() {
  std::shared_ptr<Loaded> lib;
  std::set<std::shared_ptr<Call>> waiting;
  {
    std::lock_guard lock(mu_);
    if (stopped_ && !loaded_) return;
    stopped_ = true;
    lib = std::move(loaded_);
    tools_.clear();
    waiting = waiting_;
  }
  for (const auto& c : waiting) {
    {
      std::lock_guard lock(c->mu);
      c->stopping = true;
      c->cancel.store(1);
    }
    c->cv.notify_all();
  }
  std::unique_lock lock(inflight_->mu);
  if (!inflight_->cv.wait_for(lock, stop_grace_, [&] { return inflight_->threads == 0; }))
    logger()->warn("plugin '{}': {} calls still inside it after {} ms; it stays loaded until they return",
                   config_.name, inflight_->threads, stop_grace_.count());
  lock.unlock();
  lib.reset();  // unloads now unless a call thread still holds it
}

}  // namespace mnemo::plugins
