// STREAM-style bandwidth at 1 and 2 threads: triad and read-only, best and
// median of repeats. Usage: mnemo_membw [--json PATH] [--mib PER_ARRAY]
#include <cstdio>
#include <string>

#include "bench/membw.h"
#include "bench/report.h"

int main(int argc, char** argv) {
  using namespace mnemo::bench;
  const std::string path = flag(argc, argv, "--json", MNEMO_BENCH_DIR "/membw.json");
  const int64_t mib = std::stoll(flag(argc, argv, "--mib", "256"));
  Table table({"kernel", "threads", "MiB per array", "best GB/s", "median GB/s"});
  for (auto [kernel, name] : {std::pair{BandwidthKernel::Triad, "triad"}, std::pair{BandwidthKernel::Read, "read"}})
    for (int threads : {1, 2}) {
      const Bandwidth bw = measure_bandwidth(kernel, threads, mib << 20);
      table.add({name, threads, mib, bw.best_gbps, bw.median_gbps});
    }
  table.print();
  write_json(path, {{"bandwidth", table.to_json()}});
}
