#include "plugins/tools_config.h"

#include <gtest/gtest.h>

namespace mnemo::plugins {
namespace {

ToolsConfig parse(const std::string& text) { return parse_tools_config(text, "/etc/mnemo/tools.json"); }

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const ToolsConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ToolsConfig, ReadsTheMcpServersShapeClientsAlreadyUse) {
  const auto c = parse(R"({"mcpServers": {"fs": {"command": "npx", "args": ["-y", "server", "/tmp"],
                          "env": {"DEBUG": "1"}, "cwd": "work", "tool_limits": {"read_file": {"timeout_ms": 500}}}}})");
  ASSERT_EQ(c.mcp_servers.size(), 1u);
  const auto& s = c.mcp_servers[0];
  EXPECT_EQ(s.name, "fs");
  EXPECT_EQ(s.argv, (std::vector<std::string>{"npx", "-y", "server", "/tmp"}));
  EXPECT_EQ(s.env.at("DEBUG"), "1");
  EXPECT_EQ(s.cwd, "/etc/mnemo/work");  // relative to the tools file
  EXPECT_EQ(s.limits.by_tool.at("read_file").timeout, std::chrono::milliseconds(500));
}

TEST(ToolsConfig, LimitsLayerOverDefaults) {
  const auto c = parse(R"({"limits": {"timeout_ms": 1000, "concurrency": 2},
                           "commands": {"wc": {"argv": ["wc", "-w"], "limits": {"max_output_bytes": 64}}}})");
  EXPECT_EQ(c.defaults.timeout, std::chrono::milliseconds(1000));
  EXPECT_EQ(c.defaults.concurrency, 2);
  EXPECT_EQ(c.defaults.max_output_bytes, ToolLimits{}.max_output_bytes);
  ASSERT_EQ(c.commands.size(), 1u);
  const ToolLimits l = c.commands[0].limits.all.apply(c.defaults);
  EXPECT_EQ(l.max_output_bytes, 64u);
  EXPECT_EQ(l.timeout, std::chrono::milliseconds(1000));
  EXPECT_EQ(c.commands[0].env_allow, CommandConfig{}.env_allow);
}

TEST(ToolsConfig, PluginsAndCommandsKeepTheirFields) {
  const auto c = parse(R"({"plugins": {"text": {"path": "lib/libtext.so", "config": {"greeting": "hi"}}},
                           "commands": {"shout": {"argv": ["/usr/bin/tr", "a-z", "A-Z"], "description": "Upper-cases",
                                                  "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
                                                  "env_allow": [], "env": {"LC_ALL": "C"}, "cwd": "/tmp"}}})");
  ASSERT_EQ(c.plugins.size(), 1u);
  EXPECT_EQ(c.plugins[0].path, "/etc/mnemo/lib/libtext.so");
  EXPECT_EQ(c.plugins[0].config["greeting"], "hi");
  ASSERT_EQ(c.commands.size(), 1u);
  EXPECT_EQ(c.commands[0].description, "Upper-cases");
  EXPECT_TRUE(c.commands[0].env_allow.empty());
  EXPECT_EQ(c.commands[0].parameters["properties"]["text"]["type"], "string");
}

TEST(ToolsConfig, DisabledEntriesAreSkipped) {
  const auto c = parse(R"({"mcpServers": {"off": {"command": "x", "disabled": true}, "on": {"command": "y"}}})");
  ASSERT_EQ(c.mcp_servers.size(), 1u);
  EXPECT_EQ(c.mcp_servers[0].name, "on");
}

TEST(ToolsConfig, EveryMistakeNamesTheFileAndTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"{", "/etc/mnemo/tools.json: not valid JSON"},
      {"[]", "/etc/mnemo/tools.json: expected an object"},
      {R"({"mcpServer": {}})", "mcpServer: unknown field"},
      {R"({"mcpServers": {"fs": {"args": []}}})", "mcpServers.fs.command: missing"},
      {R"({"mcpServers": {"fs": {"command": "x", "args": ["a", 2]}}})", "mcpServers.fs.args[1]: expected a string"},
      {R"({"mcpServers": {"fs": {"url": "http://x"}}})", "mcpServers.fs.url: only stdio"},
      {R"({"mcpServers": {"fs": {"command": "x", "env": {"A": 1}}}})", "mcpServers.fs.env.A: expected a string"},
      {R"({"mcpServers": {"bad name": {"command": "x"}}})", "mcpServers.bad name: a name must be"},
      {R"({"plugins": {"p": {}}})", "plugins.p.path: missing"},
      {R"({"commands": {"c": {"argv": []}}})", "commands.c.argv: must name a program"},
      {R"({"commands": {"c": {"argv": ["x"], "timeout": 3}}})", "commands.c.timeout: unknown field"},
      {R"({"commands": {"c": {"argv": ["x"], "limits": {"timeout_ms": 0}}}})", "commands.c.limits.timeout_ms: must be between"},
      {R"({"commands": {"c": {"argv": ["x"], "limits": {"concurrency": "2"}}}})", "commands.c.limits.concurrency: expected an integer"},
      {R"({"commands": {"c": {"argv": ["x"], "parameters": {"type": "string"}}}})", "commands.c.parameters.type"},
      {R"({"commands": {"c": {"argv": ["x"], "parameters": {"type": 7}}}})", "commands.c.parameters.type"},
      {R"({"commands": {"c": {"argv": ["x"], "parameters": {"type": null}}}})", "commands.c.parameters.type"},
      {R"({"commands": {"c": {"argv": ["x"]}}, "mcpServers": {"c": {"command": "y"}}})", "is used twice"},
      {R"({"commands": {"c": {"argv": ["x"], "disabled": "yes"}}})", "commands.c.disabled: expected true or false"},
      {R"({"limits": {"timeout_ms": 99999999999999999999999999999999}})", "limits.timeout_ms: expected an integer"},
      {R"({"limits": {"timeout_ms": 18446744073709551615}})", "limits.timeout_ms: out of range"},
  };
  for (const auto& [text, want] : cases) {
    const std::string err = error_of(text);
    EXPECT_NE(err.find(want), std::string::npos) << text << "\n  gave: " << err;
  }
  // Found by fuzzing: past double's range the parser throws out_of_range.
  const std::string huge = R"({"limits": {"timeout_ms": )" + std::string(400, '9') + "}}";
  EXPECT_NE(error_of(huge).find("tools.json: not valid JSON"), std::string::npos) << error_of(huge);
}

TEST(ToolsConfig, DeepNestingIsRefusedBeforeParsing) {
  const std::string deep = R"({"plugins": {"p": {"path": "x", "config": )" + std::string(5000, '[') +
                           std::string(5000, ']') + "}}}";
  EXPECT_NE(error_of(deep).find("nested deeper than 64 levels"), std::string::npos) << error_of(deep);
}

// docs/tools.md points to it: it must stay a file mnemod accepts.
TEST(ToolsConfig, TheExampleFileIsValid) {
  const auto c = load_tools_config(std::string(MNEMO_SOURCE_DIR) + "/examples/tools/tools.json");
  EXPECT_EQ(c.mcp_servers.size(), 1u);  // "everything" is disabled
  EXPECT_EQ(c.plugins.size(), 1u);
  EXPECT_EQ(c.commands.size(), 2u);
  EXPECT_EQ(c.commands[1].argv[3], "{pattern}");
}

TEST(ToolsConfig, AMissingFileIsAClearError) {
  try {
    load_tools_config("/nonexistent/tools.json");
    FAIL();
  } catch (const ToolsConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tools.json: cannot be read"), std::string::npos);
  }
}

}  // namespace
}  // namespace mnemo::plugins
