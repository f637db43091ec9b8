// Loading weights: time and peak memory of a load with each residency
// (each in a forked child, so its peak is its own), and decode speed from
// each, interleaved token by token in one process so a busy neighbour
// slows both alike. Prints how much of each copy the kernel backs with
// 2 MB pages: that, not the residency's name, is what decode speed follows.
// Loads run in the order mapped, resident, copy, --loads times each: a copy
// right after another process freed its memory is faster than one into
// memory idle for seconds (see bench/README.md).
//   mnemo_load_bench --model DIR [--threads 1,2] [--tokens N] [--loads N] [--json PATH]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/report.h"
#include "engine/model/model.h"
#include "kernels/cpu/parallel.h"

namespace {

using namespace mnemo;
using clk = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// kB fields of a /proc file ("VmHWM:  123 kB").
long proc_kb(const char* file, const std::string& field) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return 0;
}

// Sums a field over the mappings that overlap [p, p + n) in /proc/self/smaps.
long smaps_kb(const void* p, size_t n, const std::string& field) {
  const auto lo = reinterpret_cast<uintptr_t>(p), hi = lo + n;
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  long kb = 0;
  while (std::getline(in, line)) {
    uintptr_t a = 0, b = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &a, &b) == 2 && line.find(':') > line.find(' ')) {
      inside = a < hi && b > lo;
    } else if (inside && line.rfind(field + ":", 0) == 0) {
      kb += std::stol(line.substr(field.size() + 1));
    }
  }
  return kb;
}

struct LoadResult {
  double seconds = 0, first_token = 0, peak_mib = 0, rss_mib = 0;
};

// Loads in a child: wall time of Model::load, then of one decoded token (a
// mapped model faults its pages in there), and the child's VmHWM/VmRSS.
LoadResult load_in_child(const std::string& dir, engine::Residency r, int threads) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    kernels::cpu::set_num_threads(threads);
    const auto t0 = clk::now();
    const auto m = engine::Model::load(dir, r);
    const double s = std::chrono::duration<double>(clk::now() - t0).count();
    auto cache = m->new_cache(2);
    const int32_t tok = 1;
    m->forward(std::span(&tok, 1), cache);
    const double first = std::chrono::duration<double>(clk::now() - t0).count();
    char buf[160];
    const int n = std::snprintf(buf, sizeof buf, "%f %f %ld %ld", s, first, proc_kb("/proc/self/status", "VmHWM"),
                                proc_kb("/proc/self/status", "VmRSS"));
    if (write(fds[1], buf, size_t(n)) != n) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  char buf[160] = {};
  const ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  LoadResult out;
  long hwm = 0, rss = 0;
  if (n > 0 && std::sscanf(buf, "%lf %lf %ld %ld", &out.seconds, &out.first_token, &hwm, &rss) == 4) {
    out.peak_mib = double(hwm) / 1024, out.rss_mib = double(rss) / 1024;
  }
  return out;
}

std::vector<int> int_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) v.push_back(std::stoi(x));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = bench::flag(argc, argv, "--model", "");
  if (dir.empty()) {
    std::fprintf(stderr, "usage: mnemo_load_bench --model DIR [--threads 1,2] [--tokens N] [--loads N] [--json PATH]\n");
    return 2;
  }
  const auto threads = int_list(bench::flag(argc, argv, "--threads", "1,2"));
  const int tokens = std::stoi(bench::flag(argc, argv, "--tokens", "48"));
  const int loads = std::stoi(bench::flag(argc, argv, "--loads", "3"));
  const std::string json_path = bench::flag(argc, argv, "--json", std::string(MNEMO_BENCH_DIR) + "/load_bench.json");
  std::printf("model %s; load average before: %s\n\n", dir.c_str(), bench::loadavg().c_str());

  const std::pair<const char*, engine::Residency> kinds[] = {
      {"mapped", engine::Residency::Mapped}, {"resident", engine::Residency::Resident}, {"copy", engine::Residency::Copy}};
  bench::Table loads_table({"residency", "threads", "load s (median)", "min", "max",
                            "load + first token s (median)", "min", "max", "peak RSS MiB", "RSS after MiB"});
  nlohmann::json jl = nlohmann::json::array();
  const int load_threads = *std::max_element(threads.begin(), threads.end());
  for (const auto& [name, r] : kinds) {
    std::vector<double> secs, first;
    LoadResult last;
    for (int i = 0; i < loads; ++i) {
      last = load_in_child(dir, r, load_threads);
      secs.push_back(last.seconds);
      first.push_back(last.first_token);
    }
    const auto [s0, s1] = std::minmax_element(secs.begin(), secs.end());
    const auto [f0, f1] = std::minmax_element(first.begin(), first.end());
    loads_table.add({name, load_threads, median(secs), *s0, *s1, median(first), *f0, *f1, last.peak_mib, last.rss_mib});
  }
  loads_table.print();

  std::vector<std::unique_ptr<engine::Model>> models;
  for (const auto& [name, r] : kinds) models.push_back(engine::Model::load(dir, r));
  const uint64_t bytes = models[0]->weights().matrix_bytes;
  // The matrices are one contiguous run of each file: the embedding's span
  // to the last layer's down projection covers (about) all of them.
  auto huge_mib = [&](const engine::Model& m) {
    const void* lo = m.weights().embed.data;
    return double(smaps_kb(lo, bytes, "FilePmdMapped") + smaps_kb(lo, bytes, "AnonHugePages")) / 1024;
  };
  for (auto& m : models) {  // every page in place before timing
    auto c = m->new_cache(2);
    const int32_t t = 1;
    m->forward(std::span(&t, 1), c);
  }
  std::printf("\nin 2 MB pages, of %.0f MiB of matrices: mapped %.0f MiB, resident %.0f MiB, copy %.0f MiB\n\n",
              double(bytes) / (1 << 20), huge_mib(*models[0]), huge_mib(*models[1]), huge_mib(*models[2]));

  bench::Table dec({"threads", "mapped tok/s", "resident tok/s", "copy tok/s", "mapped / copy", "resident / copy", "tokens"});
  for (int t : threads) {
    kernels::cpu::set_num_threads(t);
    std::vector<std::vector<double>> rate(models.size());
    std::vector<engine::KvCache> caches;
    for (auto& m : models) caches.push_back(m->new_cache(tokens + 2));
    int32_t tok = 1;
    for (int i = 0; i < tokens; ++i) {  // A B C A B C, one token each
      for (size_t k = 0; k < models.size(); ++k) {
        const auto t0 = clk::now();
        models[k]->forward(std::span(&tok, 1), caches[k]);
        rate[k].push_back(1 / std::chrono::duration<double>(clk::now() - t0).count());
      }
      tok = (tok * 7919 + 13) % 1000;
    }
    const double m = median(rate[0]), r = median(rate[1]), c = median(rate[2]);
    dec.add({t, m, r, c, m / c, r / c, tokens});
  }
  dec.print();
  std::printf("load average after: %s\n", bench::loadavg().c_str());
  bench::write_json(json_path, {{"model", dir}, {"loads", loads_table.to_json()}, {"decode", dec.to_json()}});
  return 0;
}
