// PReLU forward and backward for float32 NC... tensors on CPU, as MindSpore AOT custom operators
// (ops.Custom(func_type="aot")). Built and cached by src/kernels/build.py; used by src/kernels/prelu.py.
//
//   y = x            if x > 0        dL/dx = dL/dy        if x > 0
//   y = w[c] * x     otherwise       dL/dx = w[c] dL/dy   otherwise
//   dL/dw[c] = sum over n and spatial positions of (x <= 0 ? x dL/dy : 0)
//
// Every (n, c) plane is contiguous (hw elements). The weight gradient accumulates each channel over the
// batch in a fixed order, so it is bit-identical for any thread count. PReLUSetThreads sets the thread count
// (src/kernels/library.py passes the process's MindSpore CPU thread count); small tensors run on one thread
// (kernel_threads.h).
#include <algorithm>
#include <cstdint>

#include "kernel_threads.h"

namespace {

bool IsFloat32(const char *dtype) { return kernel_threads::IsDtype(dtype, "float32"); }

int64_t PlaneSize(int ndim, const int64_t *shape) {
  int64_t hw = 1;
  for (int i = 2; i < ndim; ++i) hw *= shape[i];
  return hw;
}

}  // namespace

extern "C" void PReLUSetThreads(int threads) { kernel_threads::Set(threads); }

// params: x (N, C, ...), w (C) -> y (N, C, ...)
extern "C" int PReLUForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                            void *stream, void *extra) {
  if (nparam != 3 || ndims[0] < 2 || !IsFloat32(dtypes[0]) || !IsFloat32(dtypes[1])) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const int64_t planes = shapes[0][0] * shapes[0][1], channels = shapes[0][1];
  const int64_t hw = PlaneSize(ndims[0], shapes[0]);
#pragma omp parallel for schedule(static) num_threads(kernel_threads::Count(planes * hw))
  for (int64_t p = 0; p < planes; ++p) {
    const float slope = w[p % channels];
    const float *xp = x + p * hw;
    float *yp = y + p * hw;
#pragma omp simd
    for (int64_t j = 0; j < hw; ++j) {
      const float v = xp[j];
      yp[j] = std::max(v, 0.f) + slope * std::min(v, 0.f);  // branch-free (one term is 0): vectorised
    }
  }
  return 0;
}

// params: dy (N, C, ...), x (N, C, ...), w (C) -> dx (N, C, ...), dw (C)
extern "C" int PReLUBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  if (nparam != 5 || ndims[1] < 2 || !IsFloat32(dtypes[0]) || !IsFloat32(dtypes[1]) || !IsFloat32(dtypes[2])) {
    return 1;
  }
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float *w = static_cast<const float *>(params[2]);
  float *dx = static_cast<float *>(params[3]);
  float *dw = static_cast<float *>(params[4]);
  const int64_t batch = shapes[1][0], channels = shapes[1][1];
  const int64_t hw = PlaneSize(ndims[1], shapes[1]);
#pragma omp parallel for schedule(static) num_threads(kernel_threads::Count(batch * channels * hw))
  for (int64_t c = 0; c < channels; ++c) {
    const float slope = w[c];
    double total = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const int64_t offset = (n * channels + c) * hw;
      const float *xp = x + offset, *gp = dy + offset;
      float *dxp = dx + offset;
      float plane = 0.f;
#pragma omp simd reduction(+ : plane)
      for (int64_t j = 0; j < hw; ++j) {
        const float v = xp[j], g = gp[j];
        const bool positive = v > 0.f;
        dxp[j] = positive ? g : slope * g;
        plane += positive ? 0.f : v * g;
      }
      total += plane;
    }
    dw[c] = static_cast<float>(total);
  }
  return 0;
}
