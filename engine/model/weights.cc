#include "engine/model/weights.h"

#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engine/model/model_error.h"
#include "engine/model/safetensors.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/quantize.h"

namespace mnemo::engine {

namespace fs = std::filesystem;
using kernels::DType;
using kernels::MatrixView;

class WeightLoader {
 public:
  WeightLoader(WeightStore& store, const fs::path& dir, Residency r) : store_(store), dir_(dir), residency_(r) {}

  void map_files() {
    const fs::path single = dir_ / "model.safetensors";
    const fs::path index = dir_ / "model.safetensors.index.json";
    if (fs::exists(index)) {
      for (const std::string& shard : shards_of(index)) add_file(dir_ / shard);
    } else if (fs::exists(single)) {
      add_file(single);
    } else {
      throw ModelError(dir_.string() + ": neither model.safetensors nor model.safetensors.index.json exists");
    }
  }

  MatrixView matrix(const std::string& name, int64_t rows, int64_t cols) {
    const Found f = find(name);
    expect_shape(f, {rows, cols});
    return MatrixView{data_of(f), f.info->dtype, rows, cols};
  }

  std::vector<float> vec(const std::string& name, int64_t n) {
    const Found f = find(name);
    expect_shape(f, {n});
    std::vector<float> out(static_cast<size_t>(n));
    kernels::cpu::row_to_f32(MatrixView{data_of(f), f.info->dtype, 1, n}, 0, out.data());
    return out;
  }

  bool has(const std::string& name) const { return where_.count(name) != 0; }

 private:
  struct Found {
    size_t file;
    const TensorInfo* info;
  };

  std::vector<std::string> shards_of(const fs::path& index) {
    std::ifstream in(index);
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
      throw ModelError(index.string() + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw ModelError(index.string() + ": field 'weight_map' is missing or not an object");
    std::set<std::string> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw ModelError(index.string() + ": weight_map['" + it.key() + "'] must be a file name");
      const std::string s = it.value().get<std::string>();
      if (s.find('/') != std::string::npos || s == "..")
        throw ModelError(index.string() + ": weight_map['" + it.key() + "'] names a file outside the model directory");
      shards.insert(s);
      mapped_names_[it.key()] = s;
    }
    return {shards.begin(), shards.end()};
  }

  void add_file(const fs::path& p) {
    MappedFile f = MappedFile::open(p, residency_);
    headers_.push_back(parse_safetensors_header(f.bytes(), f.bytes().size(), p.string()));
    const size_t idx = store_.files_.size();
    for (const TensorInfo& t : headers_.back().tensors) {
      auto [it, fresh] = where_.emplace(t.name, Found{idx, &t});
      if (!fresh) throw ModelError(p.string() + ": tensor '" + t.name + "' also appears in " + store_.files_[it->second.file].path().string());
      const auto m = mapped_names_.find(t.name);
      if (!mapped_names_.empty() && (m == mapped_names_.end() || m->second != p.filename().string()))
        spdlog::warn("{}: tensor '{}' is not listed for this file in the index", p.string(), t.name);
    }
    store_.files_.push_back(std::move(f));
  }

  Found find(const std::string& name) const {
    const auto it = where_.find(name);
    if (it == where_.end()) {
      const auto m = mapped_names_.find(name);
      const std::string where = m != mapped_names_.end() ? " (the index names " + m->second + ")" : "";
      throw ModelError(dir_.string() + ": tensor '" + name + "' is missing" + where);
    }
    return it->second;
  }

  void expect_shape(const Found& f, const std::vector<int64_t>& shape) const {
    if (f.info->shape == shape) return;
    auto str = [](const std::vector<int64_t>& s) {
      std::string o = "[";
      for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
      return o + "]";
    };
    throw ModelError(store_.files_[f.file].path().string() + ": tensor '" + f.info->name + "' has shape " +
                     str(f.info->shape) + " but the config needs " + str(shape));
  }

  const void* data_of(const Found& f) {
    const uint8_t* p = store_.files_[f.file].bytes().data() + headers_[f.file].data_offset + f.info->begin;
    const size_t align = kernels::dtype_size(f.info->dtype);  // on disk: always an element-wise dtype
    if (reinterpret_cast<uintptr_t>(p) % align == 0) return p;
    // The format does not promise alignment; copying keeps typed loads legal.
    const size_t n = f.info->end - f.info->begin;
    auto copy = std::make_unique<uint8_t[]>(n);
    std::memcpy(copy.get(), p, n);
    store_.realigned_.push_back(std::move(copy));
    return store_.realigned_.back().get();
  }

  WeightStore& store_;
  fs::path dir_;
  Residency residency_;
  std::deque<SafetensorsHeader> headers_;  // stable addresses: where_ points into it
  std::map<std::string, Found> where_;
  std::map<std::string, std::string> mapped_names_;
};

std::optional<WeightFormat> parse_weight_format(std::string_view s) {
  if (s == "auto") return WeightFormat::AsStored;
  if (s == "q8_0") return WeightFormat::Q8_0;
  return std::nullopt;
}

namespace {

uint64_t bytes_of(const MatrixView& m) { return kernels::matrix_bytes(m.dtype, m.rows, m.cols); }

// Anonymous memory for the quantized matrices, asking for 2 MB pages as
// resident weights do (decode streams them about 1.1-1.3x faster than 4 KB pages).
std::shared_ptr<void> huge_page_arena(size_t n) {
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw ModelError("cannot allocate " + std::to_string(n >> 20) + " MB for Q8_0 weights: " + std::strerror(errno));
  madvise(p, n, MADV_HUGEPAGE);
  return std::shared_ptr<void>(p, [n](void* q) { munmap(q, n); });
}

}  // namespace

// What the weights cost the process: RssAnon holds resident copies and Q8_0
// matrices, RssFile the mapped files' pages touched so far.
static void log_memory(const WeightStore& store, const ModelWeights& w) {
  std::ifstream in("/proc/self/status");
  std::map<std::string, long> kb;
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon != std::string::npos && (line.rfind("Vm", 0) == 0 || line.rfind("Rss", 0) == 0))
      kb[line.substr(0, colon)] = std::atol(line.c_str() + colon + 1);
  }
  int copied = 0;
  for (const MappedFile& f : store.files()) copied += f.copied();
  spdlog::info("weights: {} MB of matrices; {} of {} files copied; process RSS {} MB (anonymous {} MB, file {} MB), peak {} MB",
               w.matrix_bytes >> 20, copied, store.files().size(), kb["VmRSS"] >> 10, kb["RssAnon"] >> 10,
               kb["RssFile"] >> 10, kb["VmHWM"] >> 10);
}

// Every matrix that fits into one arena, quantized in place of its view;
// returns whether all did (then nothing refers to the files any more).
static bool quantize_matrices(ModelWeights& w, std::shared_ptr<void>& arena) {
  std::vector<MatrixView*> todo;
  const bool tied = w.lm_head.data == w.embed.data;
  for (MatrixView* m : {&w.embed, &w.lm_head}) {
    if (m == &w.lm_head && tied) continue;
    todo.push_back(m);
  }
  for (LayerWeights& L : w.layers)
    for (MatrixView* m : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) todo.push_back(m);
  size_t total = 0;
  bool all = true;
  for (const MatrixView* m : todo) {
    if (kernels::cpu::q8_0_fits(*m)) {
      total += (kernels::matrix_bytes(DType::Q8_0, m->rows, m->cols) + 63) & ~size_t(63);
    } else {
      all = false;
      spdlog::warn("weights: a [{}, {}] matrix stays {}: Q8_0 needs rows of whole 32-value blocks", m->rows, m->cols,
                   kernels::dtype_name(m->dtype));
    }
  }
  if (total == 0) return all;
  arena = huge_page_arena(total);
  auto* at = static_cast<uint8_t*>(arena.get());
  for (MatrixView* m : todo) {
    if (!kernels::cpu::q8_0_fits(*m)) continue;
    const auto* src = static_cast<const uint8_t*>(m->data);
    const size_t src_bytes = bytes_of(*m);
    *m = kernels::cpu::quantize_q8_0(*m, at);
    at += (bytes_of(*m) + 63) & ~size_t(63);
    // The source pages are no longer read: drop them from the process (the
    // page cache keeps them), so the peak is the Q8_0 bytes plus one matrix,
    // not the whole file besides. A page shared with a neighbour that is still
    // needed is kept by rounding inwards; dropping one in error would only
    // make it fault back in from the file.
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t b = (reinterpret_cast<uintptr_t>(src) + page - 1) & ~(page - 1);
    const uintptr_t e = (reinterpret_cast<uintptr_t>(src) + src_bytes) & ~(page - 1);
    if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
  }
  if (tied) w.lm_head = w.embed;
  return all;
}

std::unique_ptr<WeightStore> WeightStore::open(const fs::path& dir, const ModelConfig& c, Residency residency,
                                               WeightFormat format) {
  auto store = std::unique_ptr<WeightStore>(new WeightStore());
  // Quantizing reads each stored byte once: a resident copy first would only
  // double the peak memory.
  WeightLoader ld(*store, dir, format == WeightFormat::Q8_0 ? Residency::Mapped : residency);
  ld.map_files();
  ModelWeights& w = store->weights_;
  const int64_t H = c.hidden_size, hd = c.head_dim, qd = c.num_heads * hd, kvd = c.num_kv_heads * hd;
  const int64_t I = c.intermediate_size, V = c.vocab_size;
  w.embed = ld.matrix("model.embed_tokens.weight", V, H);
  if (c.tie_word_embeddings && !ld.has("lm_head.weight")) {
    w.lm_head = w.embed;
  } else {
    w.lm_head = ld.matrix("lm_head.weight", V, H);
  }
  w.final_norm = ld.vec("model.norm.weight", H);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights L;
    L.q = ld.matrix(p + "self_attn.q_proj.weight", qd, H);
    L.k = ld.matrix(p + "self_attn.k_proj.weight", kvd, H);
    L.v = ld.matrix(p + "self_attn.v_proj.weight", kvd, H);
    L.o = ld.matrix(p + "self_attn.o_proj.weight", H, qd);
    if (c.attention_bias) {
      L.q_bias = ld.vec(p + "self_attn.q_proj.bias", qd);
      L.k_bias = ld.vec(p + "self_attn.k_proj.bias", kvd);
      L.v_bias = ld.vec(p + "self_attn.v_proj.bias", kvd);
    }
    L.gate = ld.matrix(p + "mlp.gate_proj.weight", I, H);
    L.up = ld.matrix(p + "mlp.up_proj.weight", I, H);
    L.down = ld.matrix(p + "mlp.down_proj.weight", H, I);
    L.attn_norm = ld.vec(p + "input_layernorm.weight", H);
    L.mlp_norm = ld.vec(p + "post_attention_layernorm.weight", H);
    w.layers.push_back(std::move(L));
  }
  auto sum_bytes = [&w] {
    uint64_t b = bytes_of(w.embed) + (w.lm_head.data == w.embed.data ? 0 : bytes_of(w.lm_head));
    for (const LayerWeights& L : w.layers)
      for (const MatrixView* m : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) b += bytes_of(*m);
    return b;
  };
  w.matrix_bytes = sum_bytes();
  if (format == WeightFormat::Q8_0) {
    const uint64_t stored = w.matrix_bytes;
    const auto t0 = std::chrono::steady_clock::now();
    const bool all = quantize_matrices(w, store->quantized_);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (all) {  // nothing points into the files now
      store->files_.clear();
      store->realigned_.clear();
    }
    w.matrix_bytes = sum_bytes();
    spdlog::info("weights: quantized to Q8_0 in {:.2f} s on {} threads: {} MB of matrices as stored, {} MB resident{}",
                 secs, kernels::cpu::num_threads(), stored >> 20, w.matrix_bytes >> 20,
                 all ? "" : " (the matrices left as stored are served from the mapped files)");
  }
  if (spdlog::should_log(spdlog::level::info)) log_memory(*store, w);
  return store;
}

}  // namespace mnemo::engine
