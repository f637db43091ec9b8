// The OpenMP team behind parallel.h.
#include <omp.h>

#include "kernels/cpu/parallel.h"

namespace mnemo::kernels::cpu {

int num_threads() { return omp_get_max_threads(); }
void set_num_threads(int n) { omp_set_num_threads(n < 1 ? 1 : n); }

namespace detail {
void run_team(TeamFn fn, void* ctx, bool parallel) {
  if (!parallel || omp_get_max_threads() <= 1 || omp_in_parallel()) {
    fn(ctx, 0, 1);
    return;
  }
#pragma omp parallel
  fn(ctx, omp_get_thread_num(), omp_get_num_threads());
}
}  // namespace detail

}  // namespace mnemo::kernels::cpu
