#include "plugins/command_provider.h"

#include "plugins/logger.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "plugins/child_process.h"

namespace mnemo::plugins {

namespace {

constexpr size_t kStderrTail = 4096;

std::shared_ptr<spdlog::logger> logger() { return named_logger("tools"); }

std::string value_text(const Json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Length of the longest prefix of `s` that starts a well-formed UTF-8
// sequence (RFC 3629: no overlong forms, no surrogates, nothing past
// U+10FFFF), and whether that prefix is the whole sequence.
size_t utf8_prefix(std::string_view s, bool& complete) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = b(0);
  complete = true;
  if (lead < 0x80) return 1;
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the first continuation byte
  if (lead >= 0xC2 && lead <= 0xDF) need = 1;
  else if (lead == 0xE0) need = 2, lo = 0xA0;
  else if (lead == 0xED) need = 2, hi = 0x9F;
  else if (lead >= 0xE1 && lead <= 0xEF) need = 2;
  else if (lead == 0xF0) need = 3, lo = 0x90;
  else if (lead == 0xF4) need = 3, hi = 0x8F;
  else if (lead >= 0xF1 && lead <= 0xF3) need = 3;
  else {
    complete = false;
    return 1;
  }
  size_t n = 1;
  for (; n <= need; ++n) {
    if (n >= s.size()) break;
    const unsigned char c = b(n);
    if (n == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
  }
  complete = n == need + 1;
  return n;
}

}  // namespace

std::string replace_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    bool complete = false;
    const size_t n = utf8_prefix(text, complete);
    // One U+FFFD per maximal invalid subpart, as Unicode recommends.
    out.append(complete ? text.substr(0, n) : std::string_view("\xEF\xBF\xBD"));
    text.remove_prefix(n);
  }
  return out;
}

std::vector<std::string> expand_argv(const std::vector<std::string>& argv_template, const Json& arguments) {
  std::vector<std::string> argv;
  argv.reserve(argv_template.size());
  for (const auto& element : argv_template) {
    std::string out;
    for (size_t i = 0; i < element.size(); ++i) {
      const char c = element[i];
      const bool doubled = i + 1 < element.size() && element[i + 1] == c;
      if (c == '}') {
        if (!doubled) throw std::invalid_argument("argv element '" + element + "': unmatched '}' (write '}}')");
        out += '}';
        ++i;
      } else if (c == '{' && doubled) {
        out += '{';
        ++i;
      } else if (c == '{') {
        const size_t close = element.find('}', i + 1);
        if (close == std::string::npos)
          throw std::invalid_argument("argv element '" + element + "': unclosed '{' (write '{{')");
        const std::string key = element.substr(i + 1, close - i - 1);
        if (!arguments.is_object() || !arguments.contains(key))
          throw std::invalid_argument("missing argument '" + key + "'");
        out += value_text(arguments.at(key));
        i = close;
      } else {
        out += c;
      }
    }
    argv.push_back(std::move(out));
  }
  return argv;
}

CommandTool::CommandTool(CommandConfig config) : config_(std::move(config)) {}

void CommandTool::start() {
  const std::string where = "command '" + config_.name + "'";
  if (config_.argv.empty() || config_.argv[0].empty()) throw std::runtime_error(where + ": argv is empty");
  const std::string& program = config_.argv[0];
  // The model chooses arguments, never the program.
  if (program.find_first_of("{}") != std::string::npos)
    throw std::runtime_error(where + ": argv[0] '" + program + "' must not hold a placeholder");
  if (!resolves_to_program(program, config_.cwd))
    throw std::runtime_error(where + ": '" + program + "' is not an executable file" +
                             (program.find('/') == std::string::npos ? " on PATH" : ""));
  // Catch a malformed template now rather than on every call: expand it
  // with every placeholder present.
  Json any = Json::object();
  for (const auto& element : config_.argv)
    for (size_t open = element.find('{'); open != std::string::npos; open = element.find('{', open + 1)) {
      const size_t close = element.find('}', open);
      if (close != std::string::npos) any[element.substr(open + 1, close - open - 1)] = "";
    }
  try {
    expand_argv(config_.argv, any);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(where + ": " + e.what());
  }
  logger()->info("command '{}' ready: {}", config_.name, program);
}

std::vector<ToolSpec> CommandTool::tools() const {
  return {ToolSpec{config_.name, config_.description, config_.parameters}};
}

ToolResult CommandTool::call(const std::string& tool, const Json& arguments, const CallLimits& limits,
                             std::stop_token cancel) {
  if (tool != config_.name) return failed(Failure::Unknown, "command '" + config_.name + "' has no tool '" + tool + "'");
  const Json args = arguments.is_null() ? Json::object() : arguments;
  const auto allowed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(limits.deadline - Clock::now()).count();
  SpawnSpec spec;
  try {
    spec.argv = expand_argv(config_.argv, args);
  } catch (const std::invalid_argument& e) {
    return ToolResult{"'" + config_.name + "': " + e.what(), true, Failure::None};
  }
  spec.env = child_environment(config_.env_allow, config_.env);
  spec.cwd = config_.cwd;

  std::optional<ChildProcess> child;
  try {
    child.emplace(ChildProcess::spawn(spec));
  } catch (const std::exception& e) {
    logger()->warn("command '{}' did not start: {}", config_.name, e.what());
    return failed(Failure::Unavailable, "'" + config_.name + "' did not start: " + e.what());
  }
  const std::string input = args.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  const RunOutput r = run_to_end(*child, input, limits.deadline, limits.max_output_bytes, kStderrTail, cancel);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(r.elapsed).count();

  if (r.timed_out) {
    logger()->warn("command '{}' timed out after {} ms; killed its process group", config_.name, allowed_ms);
    return failed(Failure::Timeout, "'" + config_.name + "' timed out after " + std::to_string(allowed_ms) +
                                        " ms, its process group was killed");
  }
  if (r.cancelled) return failed(Failure::Cancelled, "'" + config_.name + "' was cancelled, its process group was killed");
  if (r.too_large)
    return failed(Failure::TooLarge, "'" + config_.name + "' wrote more than " +
                                         std::to_string(limits.max_output_bytes) +
                                         " bytes of output, its process group was killed");
  const int status = r.status.value_or(-1);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    logger()->debug("command '{}' ok in {} ms, {} bytes", config_.name, ms, r.out.size());
    return ToolResult{replace_invalid_utf8(r.out), false, Failure::None};
  }
  // Tools that report errors on stdout are common: show it when stderr is silent.
  const std::string& detail = r.err.empty() ? r.out : r.err;
  const std::string tail = detail.size() > kStderrTail ? detail.substr(detail.size() - kStderrTail) : detail;
  logger()->info("command '{}' {} after {} ms", config_.name, describe_status(status), ms);
  return ToolResult{replace_invalid_utf8("'" + config_.name + "' " + describe_status(status) +
                                         (tail.empty() ? "" : ": " + tail)),
                    true, Failure::None};
}

}  // namespace mnemo::plugins
