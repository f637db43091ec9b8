#include "plugins/tool_registry.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <thread>
#include <unordered_map>

namespace mnemo::plugins {

struct ToolRegistry::Slots {
  std::mutex mu;
  std::condition_variable cv;
  int free = 0;
};

namespace {

// Holds one of a tool's concurrency slots until it goes out of scope.
class SlotLease {
 public:
  explicit SlotLease(std::function<void()> release) : release_(std::move(release)) {}
  ~SlotLease() {
    if (release_) release_();
  }
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;

 private:
  std::function<void()> release_;
};

}  // namespace

std::string function_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  if (out.empty()) out = "_";
  if (out.size() > 64) out.resize(64);
  return out;
}

ToolRegistry::ToolRegistry(ToolLimits defaults) : defaults_(defaults) {}

ToolRegistry::~ToolRegistry() { stop(); }

void ToolRegistry::add(std::unique_ptr<Provider> provider, ProviderLimits limits) {
  providers_.push_back(Registered{std::move(provider), std::move(limits)});
}

void ToolRegistry::start() {
  // Together: a slow MCP server (npx fetching a package) costs mnemod's
  // start its own wait, not the sum of every provider's.
  std::vector<std::string> errors(providers_.size());
  {
    std::vector<std::jthread> starting;
    for (size_t i = 0; i < providers_.size(); ++i)
      starting.emplace_back([this, i, &errors] {
        Provider& p = *providers_[i].provider;
        try {
          p.start();
          spdlog::info("tools: {} '{}' started with {} tools", p.kind(), p.name(), p.tools().size());
        } catch (const std::exception& e) {
          errors[i] = std::string(p.kind()) + " '" + p.name() + "': " + e.what();
        }
      });
  }
  for (const auto& e : errors)
    if (!e.empty()) {
      stop();
      throw std::runtime_error(e);
    }
}

void ToolRegistry::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  for (auto it = providers_.rbegin(); it != providers_.rend(); ++it) it->provider->stop();
}

std::vector<ToolEntry> ToolRegistry::tools() const {
  std::vector<ToolEntry> out;
  std::unordered_map<std::string, int> count;
  for (const auto& r : providers_)
    for (auto& spec : r.provider->tools()) {
      ToolEntry e;
      e.tool = spec.name;
      e.provider = r.provider->name();
      e.kind = r.provider->kind();
      ToolLimits l = r.limits.all.apply(defaults_);
      if (auto it = r.limits.by_tool.find(spec.name); it != r.limits.by_tool.end()) l = it->second.apply(l);
      e.limits = l;
      e.spec = std::move(spec);
      ++count[function_name(e.tool)];
      out.push_back(std::move(e));
    }
  // A name offered twice is namespaced for every provider that offers it,
  // so neither silently wins.
  for (auto& e : out)
    e.name = count[function_name(e.tool)] > 1 ? function_name(e.provider + "__" + e.tool) : function_name(e.tool);
  return out;
}

std::optional<ToolEntry> ToolRegistry::find(const std::string& name) const {
  for (auto& e : tools())
    if (e.name == name) return e;
  return std::nullopt;
}

std::shared_ptr<ToolRegistry::Slots> ToolRegistry::slots_for(const std::string& name, int concurrency) {
  std::lock_guard lock(mu_);
  auto& s = slots_[name];
  if (!s) {
    s = std::make_shared<Slots>();
    s->free = concurrency;
  }
  return s;
}

ToolResult ToolRegistry::call(const std::string& name, const Json& arguments, std::stop_token cancel) {
  const auto entry = find(name);
  if (!entry) return failed(Failure::Unknown, "no tool named '" + name + "' is configured in mnemod");
  if (!arguments.is_object())
    return failed(Failure::InvalidOutput, "the arguments of '" + name + "' must be a JSON object");
  {
    std::lock_guard lock(mu_);
    if (stopped_) return failed(Failure::Unavailable, "mnemod is stopping its tools");
  }
  const auto deadline = Clock::now() + entry->limits.timeout;
  auto slots = slots_for(name, entry->limits.concurrency);
  {
    std::unique_lock lock(slots->mu);
    // Woken by releases; polled for cancel, which has no wake-up of its own here.
    while (slots->free == 0) {
      if (cancel.stop_requested()) return failed(Failure::Cancelled, "cancelled while waiting to run '" + name + "'");
      if (slots->cv.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(50))) ==
              std::cv_status::timeout &&
          Clock::now() >= deadline)
        return failed(Failure::Busy, "'" + name + "' had " + std::to_string(entry->limits.concurrency) +
                                         " calls running until the deadline (" +
                                         std::to_string(entry->limits.timeout.count()) + " ms)");
    }
    --slots->free;
  }
  SlotLease lease([slots] {
    {
      std::lock_guard lock(slots->mu);
      ++slots->free;
    }
    slots->cv.notify_one();
  });
  Provider* provider = nullptr;
  for (auto& r : providers_)
    if (r.provider->name() == entry->provider) provider = r.provider.get();
  ToolResult r;
  try {
    r = provider->call(entry->tool, arguments, CallLimits{deadline, entry->limits.max_output_bytes}, cancel);
  } catch (const std::exception& e) {
    // A provider's bug or a shape of answer it did not expect: the model
    // reads an error, the daemon serves on.
    spdlog::error("tools: {} '{}' failed calling '{}': {}", provider->kind(), provider->name(), entry->tool, e.what());
    r = failed(Failure::InvalidOutput, "'" + name + "' failed: " + e.what());
  }
  if (r.output.size() > entry->limits.max_output_bytes) {
    r = failed(Failure::TooLarge, "the output of '" + name + "' passed its cap of " +
                                      std::to_string(entry->limits.max_output_bytes) + " bytes");
  }
  return r;
}

}  // namespace mnemo::plugins
