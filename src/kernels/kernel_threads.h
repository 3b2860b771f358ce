// What every kernel of this folder shares: the OpenMP thread count (set once from Python to MindSpore's CPU
// thread count through the library's <Name>SetThreads export) and the dtype check of the AOT parameters.
// Included by each kernel source; src/kernels/build.py hashes the headers with the source, so an edit here
// rebuilds every kernel.
#pragma once

#include <omp.h>

#include <cstdint>
#include <cstring>

namespace kernel_threads {

inline int &Setting() {
  static int threads = 0;  // 0: OpenMP's default
  return threads;
}

inline void Set(int threads) { Setting() = threads; }

// The threads a kernel may use: the setting, else OpenMP's default.
inline int Threads() { return Setting() > 0 ? Setting() : omp_get_max_threads(); }

// Threads for ``work`` elements of arithmetic: small tensors run on one thread (starting the team costs more).
inline int Count(int64_t work) { return work <= 32768 ? 1 : Threads(); }

inline bool IsDtype(const char *dtype, const char *expected) { return std::strcmp(dtype, expected) == 0; }

}  // namespace kernel_threads
