// The geometry of a 2-D convolution's AOT operands, shared by the depthwise and the dense convolution kernels:
// input x (N, C, H, W), weight (O, C/groups, kh, kw), an int32 tensor (sh, sw, ph, pw) that the Python cell holds
// as a constant (stride and symmetric zero padding cannot be derived from the shapes: H 8, kernel 3 gives 3 rows
// with stride 2 pad 0 and with stride 3 pad 1), and the output or its gradient (N, O, OH, OW).
#pragma once

#include <cstdint>

#include "kernel_threads.h"

namespace conv_geometry {

struct Geometry {
  int64_t batch, channels, h, w;  // input
  int64_t out_channels, kh, kw;   // weight
  int64_t oh, ow;                 // output
  int64_t sh, sw, ph, pw;         // stride, zero padding
};

inline bool IsFloat32(const char *dtype) { return kernel_threads::IsDtype(dtype, "float32"); }

inline int64_t OutputSize(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  const int64_t span = in + 2 * pad - kernel;
  return span < 0 ? 0 : span / stride + 1;
}

// Reads operands x, w, geometry, y (indices into the AOT arrays) into g; false when they do not fit together.
// depthwise: w is (C, 1, kh, kw) (one filter per channel), else (O, C, kh, kw).
inline bool Read(int *ndims, int64_t **shapes, const char **dtypes, int x, int w, int geometry, int y,
                 const int32_t *values, bool depthwise, Geometry *g) {
  if (ndims[x] != 4 || ndims[w] != 4 || ndims[geometry] != 1 || ndims[y] != 4 || shapes[geometry][0] != 4) {
    return false;
  }
  if (!IsFloat32(dtypes[x]) || !IsFloat32(dtypes[w]) || !IsFloat32(dtypes[y]) ||
      !kernel_threads::IsDtype(dtypes[geometry], "int32")) {
    return false;
  }
  *g = {shapes[x][0], shapes[x][1], shapes[x][2], shapes[x][3], shapes[w][0], shapes[w][2], shapes[w][3],
        shapes[y][2], shapes[y][3], values[0],    values[1],    values[2],    values[3]};
  const int64_t per_filter = depthwise ? 1 : g->channels;
  return g->sh > 0 && g->sw > 0 && g->ph >= 0 && g->pw >= 0 && shapes[w][1] == per_filter &&
         (!depthwise || g->out_channels == g->channels) && shapes[y][0] == g->batch &&
         shapes[y][1] == g->out_channels && g->oh == OutputSize(g->h, g->kh, g->sh, g->ph) &&
         g->ow == OutputSize(g->w, g->kw, g->sw, g->pw);
}

}  // namespace conv_geometry
