#pragma once
// Invariant checks that stay on in Release builds: a broken block count is a
// memory-corruption bug, so it must abort loudly rather than serve garbage.
#include <cstdio>
#include <cstdlib>

#define MNEMO_KV_CHECK(cond, msg)                                                        \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: KV invariant failed: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, msg);                                                          \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
