#pragma once
// A tool that is one subprocess per call: the configured argv, with the
// model's arguments substituted into {placeholders} and also written to
// stdin as one line of JSON. No shell is ever involved, so an argument can
// never become a second command.
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/tool.h"
#include "plugins/tools_config.h"

namespace mnemo::plugins {

class CommandTool : public Provider {
 public:
  explicit CommandTool(CommandConfig config);

  const std::string& name() const override { return config_.name; }
  const char* kind() const override { return "command"; }
  // Throws std::runtime_error naming the command when argv[0] does not
  // resolve to an executable file (via mnemod's PATH when it has no '/'), or
  // when the argv template is malformed.
  void start() override;
  std::vector<ToolSpec> tools() const override;
  ToolResult call(const std::string& tool, const Json& arguments, const CallLimits& limits,
                  std::stop_token cancel) override;
  void stop() override {}  // nothing outlives a call

 private:
  CommandConfig config_;
};

// The argv for one call: each `{name}` becomes the argument's value (a
// string as is, anything else as its JSON text); `{{` and `}}` are literal
// braces. Throws std::invalid_argument naming a missing argument or the
// malformed element.
std::vector<std::string> expand_argv(const std::vector<std::string>& argv_template, const Json& arguments);

// `text` with each invalid UTF-8 sequence replaced by U+FFFD, so that tool
// output can always be put into JSON.
std::string replace_invalid_utf8(std::string_view text);

}  // namespace mnemo::plugins
