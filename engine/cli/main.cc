// mnemo: command-line access to the engine (run, logits, tokenize,
// detokenize, model new).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "engine/cli/commands.h"
#include "engine/cli/flags.h"

namespace {

constexpr const char* kUsage =
    "usage: mnemo <command> [flags]\n\n"
    "commands:\n"
    "  run          generate text from a prompt, streamed to stdout\n"
    "  logits       print next-token logits for given token ids as JSON\n"
    "  tokenize     print the token ids of a text as JSON\n"
    "  detokenize   print the text of token ids\n"
    "  model new    generate a small random model in Hugging Face layout\n\n"
    "Run 'mnemo <command> --help' for a command's flags.\n"
    "Environment: MNEMO_LOG_LEVEL (trace|debug|info|warn|error), MNEMO_HOME (default model location).\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  spdlog::set_default_logger(spdlog::stderr_color_mt("mnemo"));
  if (const char* lvl = std::getenv("MNEMO_LOG_LEVEL")) spdlog::set_level(spdlog::level::from_str(lvl));
  else spdlog::set_level(spdlog::level::warn);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "run") return mnemo::cli::cmd_run(args);
    if (cmd == "logits") return mnemo::cli::cmd_logits(args);
    if (cmd == "tokenize") return mnemo::cli::cmd_tokenize(args);
    if (cmd == "detokenize") return mnemo::cli::cmd_detokenize(args);
    if (cmd == "model") {
      if (args.empty() || args[0] != "new") throw mnemo::cli::UsageError("'mnemo model' needs a subcommand: new");
      args.erase(args.begin());
      return mnemo::cli::cmd_model_new(args);
    }
    throw mnemo::cli::UsageError("unknown command '" + cmd + "' (see 'mnemo --help')");
  } catch (const mnemo::cli::UsageError& e) {
    std::cerr << "mnemo: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mnemo: error: " << e.what() << "\n";
    return 1;
  }
}
