#pragma once
// Reading the goldens of tests/golden/ (written by tests/reference/*.py): a
// golden names the `mnemo model new` arguments of its model and the sha256 of
// the files that define it, so a test regenerates the model, checks it is
// byte-identical to the one the reference saw ("the generator changed" is then
// told apart from "the engine is wrong"), and loads it.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/model/model.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::engine::testing {

// sha256sum's hex digest of `f` ("" when it cannot run).
inline std::string sha256_of(const std::filesystem::path& f) {
  FILE* p = popen(("sha256sum '" + f.string() + "'").c_str(), "r");
  if (!p) return "";
  std::array<char, 65> buf{};
  const size_t n = fread(buf.data(), 1, 64, p);
  pclose(p);
  return std::string(buf.data(), n);
}

// One logits row against the golden's: max|got - want| / max|want|
// (tests/reference/README.md, "Error measure").
inline double row_rel_err(const float* got, const nlohmann::json& want) {
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double w = want[i].get<double>();
    max_diff = std::max(max_diff, std::fabs(double(got[i]) - w));
    max_abs = std::max(max_abs, std::fabs(w));
  }
  return max_diff / max_abs;
}

// The *.json directly in tests/golden/<subdir>, sorted; none when the folder
// is missing (each test's count check then fails).
inline std::vector<std::filesystem::path> goldens_in(const std::string& subdir = "") {
  namespace fs = std::filesystem;
  std::vector<fs::path> out;
  const fs::path dir = fs::path(MNEMO_SOURCE_DIR) / "tests" / "golden" / subdir;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".json") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

inline nlohmann::json read_golden(const std::filesystem::path& f) {
  std::ifstream in(f);
  return nlohmann::json::parse(in);
}

// The golden's generator_args, each quoted for the shell, each after a space.
inline std::string quoted_generator_args(const nlohmann::json& g) {
  std::string args;
  for (const auto& a : g["generator_args"]) args += " '" + a.get<std::string>() + "'";
  return args;
}

// Whether every file of model_files_sha256 in `dir` has the golden's hash;
// a test failure for each that does not, ending in `regenerate_hint` (what
// to rerun, e.g. "regenerate with tests/reference/score_reference.py").
inline bool model_files_match(const std::filesystem::path& dir, const nlohmann::json& g,
                              const std::string& regenerate_hint) {
  bool all = true;
  for (auto it = g["model_files_sha256"].begin(); it != g["model_files_sha256"].end(); ++it) {
    const std::string got = sha256_of(dir / it.key()), want = it.value().get<std::string>();
    if (got == want) continue;
    ADD_FAILURE() << it.key() << " differs from the model the golden was made with (sha256 " << got << ", golden "
                  << want << "): the generator changed; " << regenerate_hint;
    all = false;
  }
  return all;
}

// The golden's model, regenerated with `mnemo model new <generator_args>` in
// a fresh temporary directory (named after `dir_name`), checked against
// model_files_sha256 and loaded; null after a test failure otherwise. The
// directory is removed once loaded: the mapped weights stay readable.
inline std::unique_ptr<Model> load_golden_model(const nlohmann::json& g, const std::string& dir_name,
                                                const std::string& regenerate_hint) {
  const std::filesystem::path dir = fresh_dir(dir_name);
  const std::string cmd = std::string(MNEMO_BINARY_DIR) + "/mnemo model new" + quoted_generator_args(g) + " --out '" +
                          dir.string() + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << cmd << " failed (build the `mnemo` target first)";
    return nullptr;
  }
  std::unique_ptr<Model> model = model_files_match(dir, g, regenerate_hint) ? Model::load(dir) : nullptr;
  std::filesystem::remove_all(dir);
  return model;
}

}  // namespace mnemo::engine::testing
