// Opening weight files: the resident copy holds exactly the file's bytes,
// shifted so a safetensors data section starts on a cache line, and the
// process holds the file once while and after loading (the file is read,
// never mapped, so its page-cache pages are not counted a second time).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/model/generator.h"
#include "engine/model/mapped_file.h"
#include "engine/model/model.h"
#include "engine/model/model_error.h"
#include "engine/model/safetensors.h"
#include "kernels/cpu/parallel.h"
#include "tests/engine/test_model_dir.h"

namespace mnemo::engine {
namespace {

using testing::fresh_dir;

// kB of one field of /proc/self/status (VmRSS, VmHWM, RssAnon, RssFile).
long status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

// Resets VmHWM to the current RSS, so it then records this load's peak.
bool reset_peak() { return bool(std::ofstream("/proc/self/clear_refs") << "5"); }

std::vector<uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A file that starts like a safetensors file whose data section begins
// `header + 8` bytes in, then random bytes: size not a multiple of 2 MB.
std::filesystem::path random_file(const std::string& name, size_t size, uint64_t header) {
  const auto dir = fresh_dir(name);
  std::filesystem::create_directories(dir);
  std::vector<uint8_t> b(size);
  std::mt19937_64 rng(size);
  for (size_t i = 0; i < size; i += 8) {
    const uint64_t v = rng();
    std::memcpy(b.data() + i, &v, std::min<size_t>(8, size - i));
  }
  for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(header >> (8 * i));
  const auto p = dir / "weights.bin";
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(size));
  return p;
}

// Removes a test's directory of large files when the test ends.
struct Cleanup {
  std::filesystem::path dir;
  ~Cleanup() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

struct Threads {
  explicit Threads(int n) : old(kernels::cpu::num_threads()) { kernels::cpu::set_num_threads(n); }
  ~Threads() { kernels::cpu::set_num_threads(old); }
  int old;
};

TEST(MappedFile, ResidentAndMappedHoldTheFileBytes) {
  const size_t size = (size_t(5) << 20) + 12345;  // pieces of 2 MB and a partial last one
  const auto p = random_file("bytes", size, 1000);
  const Cleanup cleanup{p.parent_path()};
  const auto want = read_all(p);
  for (int threads : {1, 3}) {
    Threads t(threads);
    for (Residency r : {Residency::Copy, Residency::Resident, Residency::Mapped}) {
      const MappedFile f = MappedFile::open(p, r);
      ASSERT_EQ(f.bytes().size(), size);
      if (r != Residency::Resident) {
        EXPECT_EQ(f.copied(), r == Residency::Copy);
      }
      // Resident copies this file (data section off a cache line).
      if (r == Residency::Resident) {
        EXPECT_TRUE(f.copied());
      }
      EXPECT_EQ(std::memcmp(f.bytes().data(), want.data(), size), 0) << threads << " threads";
      if (f.copied()) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(f.bytes().data() + 8 + 1000) % 64, 0u) << "data section not on a cache line";
      }
    }
  }
}

TEST(MappedFile, CopyIsHeldOnce) {
  const size_t size = size_t(48) << 20;
  const auto p = random_file("once", size, 64 - 8);
  const Cleanup cleanup{p.parent_path()};
  (void)read_all(p);  // in the page cache, as a model loaded before would be
  ASSERT_TRUE(reset_peak()) << "cannot reset VmHWM through /proc/self/clear_refs";
  const long rss0 = status_kb("VmRSS"), file0 = status_kb("RssFile"), anon0 = status_kb("RssAnon");
  const MappedFile f = MappedFile::open(p, Residency::Copy);
  ASSERT_TRUE(f.copied());
  const long copy_kb = long(size >> 10);
  // A copy made through a mapping of the file peaks at twice the file.
  EXPECT_LT(status_kb("VmHWM") - rss0, copy_kb * 5 / 4) << "peak RSS during the load: more than one copy";
  EXPECT_GT(status_kb("RssAnon") - anon0, copy_kb * 9 / 10) << "the copy is not resident";
  EXPECT_LT(status_kb("RssFile") - file0, copy_kb / 10) << "the file's pages are counted too";
}

// A file not in the page cache whose data section starts on a cache line:
// Resident reads it ahead in 2 MB folios and serves them, where the kernel
// and file system can (else it copies). One whose data section does not is
// copied, shifted onto a cache line.
TEST(MappedFile, ResidentServesTheFilesOwnHugePagesWhenAligned) {
  const size_t size = (size_t(24) << 20) + 4096;
  {
    const auto p = random_file("misaligned", size, 100);
    const Cleanup cleanup{p.parent_path()};
    const MappedFile f = MappedFile::open(p, Residency::Resident);
    EXPECT_TRUE(f.copied());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f.bytes().data() + 8 + 100) % 64, 0u);
  }
  const auto p = random_file("cache", size, 64 - 8);
  const Cleanup cleanup{p.parent_path()};
  const auto want = read_all(p);
  {
    const int fd = ::open(p.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  ASSERT_TRUE(reset_peak());
  const long rss0 = status_kb("VmRSS");
  const MappedFile f = MappedFile::open(p, Residency::Resident);
  EXPECT_TRUE(f.copied() || f.huge_fraction() >= 0.9) << f.huge_fraction();
  EXPECT_LT(status_kb("VmHWM") - rss0, long(size >> 10) * 5 / 4) << "peak RSS during the load: more than one copy";
  EXPECT_EQ(std::memcmp(f.bytes().data(), want.data(), size), 0);
  std::printf("resident: %s, %.0f%% in 2 MB pages\n", f.copied() ? "copied" : "the page cache's", 100 * f.huge_fraction());
}

TEST(MappedFile, MissingTruncatedAndEmptyFiles) {
  const auto dir = fresh_dir("files");
  std::filesystem::create_directories(dir);
  for (Residency r : {Residency::Mapped, Residency::Resident, Residency::Copy}) {
    EXPECT_THROW(MappedFile::open(dir / "absent.bin", r), ModelError);
    EXPECT_THROW(MappedFile::open(dir, r), ModelError);  // not a regular file
  }
  std::ofstream(dir / "empty.bin");
  EXPECT_TRUE(MappedFile::open(dir / "empty.bin", Residency::Copy).bytes().empty());
  // A header length past the end: no shift, still every byte.
  const auto p = random_file("short", 100, uint64_t(1) << 40);
  const MappedFile f = MappedFile::open(p, Residency::Copy);
  EXPECT_EQ(std::memcmp(f.bytes().data(), read_all(p).data(), 100), 0);
}

// A generated BF16 model of about 40 MB in dir, its file read once so the
// page cache holds it; returns the file's size in kB.
long generated_model(const std::filesystem::path& dir, uint64_t seed) {
  GeneratorOptions o;
  o.hidden = 512, o.layers = 4, o.heads = 8, o.kv_heads = 4, o.intermediate = 1408, o.vocab = 8000;
  o.dtype = kernels::DType::BF16, o.seed = seed;
  generate_model(o, dir);
  const auto file = dir / "model.safetensors";
  (void)read_all(file);
  return long(std::filesystem::file_size(file) >> 10);
}

// A generated BF16 model, copied: each matrix the model serves is the
// file's bytes, on a cache line, and the process holds them once.
TEST(MappedFile, GeneratedModelIsCopiedOnce) {
  const auto dir = fresh_dir("generated");
  const Cleanup cleanup{dir};
  const long size_kb = generated_model(dir, 7);
  const auto file = dir / "model.safetensors";
  ASSERT_TRUE(reset_peak());
  const long rss0 = status_kb("VmRSS");
  const auto m = Model::load(dir, Residency::Copy);
  EXPECT_LT(status_kb("VmHWM") - rss0, size_kb * 5 / 4) << "peak RSS during the load: more than one copy";
  EXPECT_GT(status_kb("VmRSS") - rss0, size_kb * 9 / 10);

  const auto bytes = read_all(file);
  const SafetensorsHeader h = parse_safetensors_header(bytes, bytes.size(), file.string());
  auto expect_same = [&](const kernels::MatrixView& v, const std::string& name) {
    for (const TensorInfo& t : h.tensors) {
      if (t.name != name) continue;
      ASSERT_EQ(t.end - t.begin, uint64_t(v.rows) * kernels::row_bytes(v.dtype, v.cols)) << name;
      EXPECT_EQ(std::memcmp(v.data, bytes.data() + h.data_offset + t.begin, t.end - t.begin), 0) << name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % 64, t.begin % 64) << name << ": not cache-line aligned as in the data section";
      return;
    }
    ADD_FAILURE() << name << " not in the file";
  };
  const ModelWeights& w = m->weights();
  expect_same(w.embed, "model.embed_tokens.weight");
  expect_same(w.lm_head, "lm_head.weight");
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const LayerWeights& L = w.layers[l];
    expect_same(L.q, p + "self_attn.q_proj.weight");
    expect_same(L.k, p + "self_attn.k_proj.weight");
    expect_same(L.v, p + "self_attn.v_proj.weight");
    expect_same(L.o, p + "self_attn.o_proj.weight");
    expect_same(L.gate, p + "mlp.gate_proj.weight");
    expect_same(L.up, p + "mlp.up_proj.weight");
    expect_same(L.down, p + "mlp.down_proj.weight");
  }
}

// Quantizing to Q8_0 at load reads the mapped file matrix by matrix and drops
// each source range once quantized: the peak is the Q8_0 bytes (34 per 32 BF16
// values, about 53% of the file) plus a matrix, not the file on top of them.
TEST(MappedFile, Q8LoadDoesNotHoldTheFileBesidesTheQuantizedCopy) {
  const auto dir = fresh_dir("generated_q8");
  const Cleanup cleanup{dir};
  const long size_kb = generated_model(dir, 8);
  ASSERT_TRUE(reset_peak());
  const long rss0 = status_kb("VmRSS");
  const auto m = Model::load(dir, Residency::Resident, WeightFormat::Q8_0);
  ASSERT_EQ(m->weights().layers[0].q.dtype, kernels::DType::Q8_0);
  // Holding the file while quantizing peaks at about 1.55x the file.
  EXPECT_LT(status_kb("VmHWM") - rss0, size_kb * 4 / 5) << "peak RSS during the Q8_0 load";
}

}  // namespace
}  // namespace mnemo::engine
