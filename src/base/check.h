#pragma once
// UB_CHECK: a broken invariant aborts with the place it broke. Never used on bytes from a peer.

#include <cstdio>
#include <cstdlib>

#define UB_CHECK(cond)                                                                          \
  do {                                                                                          \
    if (!(cond)) [[unlikely]] {                                                                 \
      std::fprintf(stderr, "unbroken: check failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)
