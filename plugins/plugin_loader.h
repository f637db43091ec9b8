#pragma once
// Tools from a shared library that speaks the C ABI of
// plugins/include/mnemo_plugin.h. Each call runs on its own thread so that
// the host can stop waiting at the deadline even when the plugin does not:
// the plugin is then asked to cancel, its thread is counted until it
// returns, and the library is only unloaded once no thread is inside it.
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "plugins/tool.h"
#include "plugins/tools_config.h"

namespace mnemo::plugins {

class PluginLibrary : public Provider {
 public:
  // `stop_grace`: how long stop() waits for calls still inside the plugin
  // before leaving the library loaded for them.
  explicit PluginLibrary(PluginConfig config, std::chrono::milliseconds stop_grace = std::chrono::seconds(2));
  ~PluginLibrary() override;
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const std::string& name() const override { return config_.name; }
  const char* kind() const override { return "plugin"; }
  // Loads the library, checks its ABI version, runs its init with the
  // config and reads its tool list. Throws std::runtime_error naming the
  // plugin and the path (missing file, no entry point, ABI mismatch, init
  // failed with the plugin's message, a tool list that is not valid).
  void start() override;
  std::vector<ToolSpec> tools() const override;
  ToolResult call(const std::string& tool, const Json& arguments, const CallLimits& limits,
                  std::stop_token cancel) override;
  // Later calls end Unavailable, waiting calls return Unavailable, running
  // ones are asked to cancel; then waits up to stop_grace for them.
  void stop() override;

  // Plugin threads still running, including calls the host gave up on.
  int calls_in_plugin() const;

  struct Loaded;    // the library and the plugin's state, shared with call threads
  struct Call;      // one call, shared between the caller and its thread
  struct Inflight;  // counts the threads inside the plugin

 private:
  std::string where() const;

  PluginConfig config_;
  std::chrono::milliseconds stop_grace_;
  mutable std::mutex mu_;
  std::shared_ptr<Loaded> loaded_;  // null before start() and after stop()
  std::vector<ToolSpec> tools_;
  std::set<std::shared_ptr<Call>> waiting_;  // calls whose caller still waits
  std::shared_ptr<Inflight> inflight_;
  bool stopped_ = false;
};

}  // namespace mnemo::plugins
