#pragma once
// Minimal flag parsing for the mnemo subcommands: --name VALUE, --switch,
// --help. Unknown flags and missing values are usage errors.
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mnemo::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Flags {
 public:
  Flags(std::string usage, std::string summary);
  Flags& value(const std::string& name, const std::string& meta, const std::string& help,
               std::optional<std::string> dflt = std::nullopt);
  Flags& toggle(const std::string& name, const std::string& help);

  // Returns false when --help was given (the help is then printed).
  bool parse(const std::vector<std::string>& args);
  std::string help() const;

  bool has(const std::string& name) const;
  std::string str(const std::string& name) const;  // throws UsageError if absent
  int64_t integer(const std::string& name, int64_t lo, int64_t hi) const;
  double number(const std::string& name) const;
  bool on(const std::string& name) const { return has(name); }

 private:
  struct Spec {
    std::string meta, help;
    std::optional<std::string> dflt;
    bool is_toggle;
  };
  std::string usage_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Spec> specs_;
  std::map<std::string, std::string> values_;
};

// Parses "1,2,3" into ids; throws UsageError naming the flag.
std::vector<int32_t> parse_id_list(const std::string& flag, const std::string& text);

}  // namespace mnemo::cli
