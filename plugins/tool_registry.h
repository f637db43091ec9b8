#pragma once
// Every configured tool under the name the model sees, with its limits.
// Calls go through here: the deadline, the output cap and the concurrency
// limit of each tool are applied in one place, whatever the provider.
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "plugins/tool.h"
#include "plugins/tools_config.h"

namespace mnemo::plugins {

struct ToolEntry {
  std::string name;      // as the model sees it: the tool's own name, or "<provider>__<tool>" when two collide
  std::string tool;      // the provider's own name for it
  std::string provider;  // the configured provider name
  std::string kind;      // "mcp", "plugin", "command"
  ToolSpec spec;         // spec.name is the provider's name; describe it to the model as `name`
  ToolLimits limits;
};

class ToolRegistry {
 public:
  explicit ToolRegistry(ToolLimits defaults = {});
  ~ToolRegistry();
  ToolRegistry(const ToolRegistry&) = delete;
  ToolRegistry& operator=(const ToolRegistry&) = delete;

  void add(std::unique_ptr<Provider> provider, ProviderLimits limits = {});
  // Starts every provider in order; throws std::runtime_error naming the
  // provider when one cannot start (a missing library or command). MCP
  // servers retry in the background instead.
  void start();
  // Stops every provider; later calls end Unavailable. Idempotent.
  void stop();

  // The tools now (MCP servers can change theirs at any time).
  std::vector<ToolEntry> tools() const;
  std::optional<ToolEntry> find(const std::string& name) const;
  bool empty() const { return providers_.empty(); }

  // Runs a tool by its exposed name. Never throws for anything the tool
  // does; an unknown name is Failure::Unknown (nothing runs), arguments
  // that are not a JSON object are an error result.
  ToolResult call(const std::string& name, const Json& arguments, std::stop_token cancel = {});

 private:
  struct Slots;
  struct Registered {
    std::unique_ptr<Provider> provider;
    ProviderLimits limits;
  };
  std::shared_ptr<Slots> slots_for(const std::string& name, int concurrency);

  ToolLimits defaults_;
  std::vector<Registered> providers_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Slots>> slots_;  // by exposed name
  bool stopped_ = false;
};

// OpenAI's function-name alphabet ([A-Za-z0-9_-], at most 64): other
// characters become '_'.
std::string function_name(const std::string& name);

}  // namespace mnemo::plugins
