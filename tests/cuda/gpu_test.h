#pragma once
#include <gtest/gtest.h>

#include <cstdlib>

#include "kernels/cuda/ops.h"

// With no device the test is skipped; scripts/gpu-check sets MNEMO_REQUIRE_GPU
// so that on a GPU machine a device that cannot be reached fails instead.
#define MNEMO_SKIP_WITHOUT_GPU()                                                    \
  do {                                                                              \
    if (!mnemo::kernels::cuda::cuda_device_available()) {                           \
      if (std::getenv("MNEMO_REQUIRE_GPU")) FAIL() << "MNEMO_REQUIRE_GPU: no device"; \
      GTEST_SKIP() << "no CUDA device";                                             \
    }                                                                               \
  } while (0)
