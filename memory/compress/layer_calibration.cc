#include "memory/compress/layer_calibration.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "engine/model/attention_scores.h"
#include "engine/tokenizer/bundled_corpus.h"
#include "engine/tokenizer/tokenizer.h"
#include "memory/compress/layer_budgets.h"
#include "memory/compress/log.h"

namespace mnemo::memory::compress {
namespace {

namespace fs = std::filesystem;
constexpr int kFormatVersion = 1;

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void add(const std::string& s) { add(s.data(), s.size()), add(int64_t(s.size())); }
  void add(int64_t v) { add(&v, sizeof v); }
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string fingerprint_of(const engine::Model& model, const CalibrationOptions& o, std::span<const int32_t> tokens) {
  Fnv f;
  f.add(int64_t(kFormatVersion));
  f.add(read_all(model.dir() / "config.json"));
  std::vector<fs::path> weights;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(model.dir(), ec))
    if (e.path().extension() == ".safetensors") weights.push_back(e.path());
  std::sort(weights.begin(), weights.end());
  for (const auto& w : weights) {
    f.add(w.filename().string());
    f.add(int64_t(fs::file_size(w, ec)));
    f.add(int64_t(fs::last_write_time(w, ec).time_since_epoch().count()));
  }
  f.add(o.sinks), f.add(o.window), f.add(int64_t(tokens.size()));
  f.add(tokens.data(), tokens.size_bytes());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(f.h));
  return hex;
}

// Measurements this process could not store, by fingerprint.
std::mutex memo_mu;
std::map<std::string, std::vector<double>>& memo() {
  static std::map<std::string, std::vector<double>> m;
  return m;
}

std::optional<std::vector<double>> load(const fs::path& file, const std::string& fp, int64_t layers) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(read_all(file));
    if (j.at("version").get<int>() != kFormatVersion || j.at("fingerprint").get<std::string>() != fp) {
      logger()->info("layer sensitivity in {} is stale (model or calibration changed): measuring again", file.string());
      return std::nullopt;
    }
    auto sigma = j.at("sigma").get<std::vector<double>>();
    if (int64_t(sigma.size()) != layers) return std::nullopt;
    return sigma;
  } catch (const std::exception& e) {
    logger()->warn("layer sensitivity in {} unreadable ({}): measuring again", file.string(), e.what());
    return std::nullopt;
  }
}

// Written beside the target and renamed over it, so a reader never sees half a file.
bool store(const fs::path& file, const nlohmann::json& j, std::string& why) {
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      why = "cannot create " + tmp.string();
      return false;
    }
    out << j.dump(2) << "\n";
    if (!out.flush()) {
      why = "cannot write " + tmp.string();
      return false;
    }
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) {
    why = "cannot rename to " + file.string() + ": " + ec.message();
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

}  // namespace

std::vector<int32_t> LayerBudgetCalibration::calibration_tokens(const engine::Model& model, int64_t n) {
  std::vector<int32_t> ids;
  const fs::path tok = model.dir() / "tokenizer.json";
  std::error_code ec;
  if (fs::exists(tok, ec)) {
    try {
      ids = engine::Tokenizer::load(tok).encode(engine::bundled_corpus(), false);
    } catch (const std::exception& e) {
      logger()->warn("calibration: tokenizer {} unusable ({}), using a fixed token sequence", tok.string(), e.what());
      ids.clear();
    }
  }
  const int64_t vocab = model.config().vocab_size;
  std::erase_if(ids, [&](int32_t t) { return t < 0 || t >= vocab; });
  if (ids.empty()) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int64_t i = 0; i < n; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      ids.push_back(int32_t((x >> 33) % uint64_t(vocab)));
    }
  }
  std::vector<int32_t> out;
  out.reserve(size_t(n));
  while (int64_t(out.size()) < n) out.push_back(ids[out.size() % ids.size()]);
  return out;
}

LayerBudgetCalibration::LayerBudgetCalibration(const engine::Model& model, CalibrationOptions o) {
  if (o.text_tokens < 2 || o.sinks < 0 || o.window < 0)
    throw std::invalid_argument("layer calibration: need text_tokens >= 2, sinks >= 0, window >= 0");
  file_ = o.file.value_or(model.dir() / "mnemo_layer_sensitivity.json");
  const std::vector<int32_t> tokens = calibration_tokens(model, o.text_tokens);
  fingerprint_ = fingerprint_of(model, o, tokens);
  const int64_t layers = model.config().num_layers;

  if (auto s = load(file_, fingerprint_, layers)) {
    sigma_ = std::move(*s);
    source_ = Source::Loaded;
    return;
  }
  {
    std::lock_guard lock(memo_mu);
    if (auto it = memo().find(fingerprint_); it != memo().end()) {
      sigma_ = it->second;
      source_ = Source::Memory;
      return;
    }
  }
  sigma_ = engine::layer_key_similarity(model, tokens, o.sinks, o.window);
  const nlohmann::json j = {{"version", kFormatVersion}, {"fingerprint", fingerprint_}, {"text_tokens", o.text_tokens},
                            {"sinks", o.sinks}, {"window", o.window}, {"sigma", sigma_}};
  std::string why;
  if (store(file_, j, why)) {
    source_ = Source::Computed;
    logger()->info("layer sensitivity of {} measured on {} tokens (sinks {}, window {}), stored in {}",
                   model.dir().string(), tokens.size(), o.sinks, o.window, file_.string());
  } else {
    source_ = Source::Memory;
    logger()->warn("layer sensitivity of {} kept in memory only: {}", model.dir().string(), why);
    std::lock_guard lock(memo_mu);
    memo()[fingerprint_] = sigma_;
  }
}

std::vector<int64_t> LayerBudgetCalibration::budgets(int64_t per_layer, double alpha, std::optional<int64_t> floor) const {
  return layer_budgets(sigma_, per_layer, alpha, floor);
}

}  // namespace mnemo::memory::compress
