#pragma once
// A fuzz target's property check: on failure, says which property broke and aborts, so libFuzzer
// saves the input and the replay runner fails. Unlike assert(), it holds in release builds too.
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)
