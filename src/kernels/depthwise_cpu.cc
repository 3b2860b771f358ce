// Depthwise 2-D convolution (channel multiplier 1, no bias) forward and backward for float32 NCHW tensors on
// CPU, as MindSpore AOT custom operators (ops.Custom(func_type="aot")). Built and cached by
// src/kernels/build.py; used by src/kernels/conv.py.
//
//   y[n,c,i,j]  = sum_{a,b} w[c,0,a,b] x[n,c, i*sh - ph + a, j*sw - pw + b]    (x is 0 outside the image)
//   dx[n,c,.,.] = the same sum scattered back: each dy[n,c,i,j] w[c,0,a,b] goes to x's position above
//   dw[c,0,a,b] = sum over n, i, j of dy[n,c,i,j] x[n,c, i*sh - ph + a, j*sw - pw + b]
//
// Any kernel size (kh, kw) comes from the weight's shape; the output size (floor((H + 2ph - kh) / sh) + 1,
// and for W) from the output's. Stride and padding arrive as a fourth input, an int32 tensor
// (sh, sw, ph, pw) that the Python cell holds as a constant: MindSpore 2.10's AOT attributes need
// MindSpore's C++ header (custom_aot_extra.h) and an Init export that reads them through a C++ class across
// the library boundary (ABI-dependent), and one exported symbol per geometry would limit the strides and
// paddings to a fixed list; stride and padding cannot be derived from the shapes (H 8, kernel 3: stride 2
// pad 0 and stride 3 pad 1 both give 3 rows). The backward takes the same geometry tensor.
//
// Parallelism: forward and dx over the N*C planes (each plane independent), dw over channels; each channel's
// dw accumulates its planes in batch order (float per plane, double over the batch), so it is bit-identical
// for any thread count. DepthwiseSetThreads sets the thread count (src/kernels/library.py passes the
// process's MindSpore CPU thread count; kernel_threads.h). Inner loops run along an output row (dw: into one
// row of float sums per tap, reduced once per plane rather than once per row); with stride 1 they are
// contiguous and vectorise. Two shapes have their own paths, each faster than the tap-by-tap loop on the
// MobileFaceNet shapes: 3x3 stride 1 padding 1 (forward in one pass per output row, the nine products summed in
// registers; dx is the same correlation of dy with the flipped kernel) and a kernel covering the whole unpadded
// plane (linear7: a dot product per plane, dx = dy w, dw = the float sum over the batch of dy x). The
// plane functions are compiled twice (target_clones: AVX2 + FMA and the x86-64 baseline), the loader picking
// one for the CPU it runs on, so the cached library stays portable (no -march=native).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "conv_geometry.h"
#include "kernel_threads.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DEPTHWISE_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define DEPTHWISE_CLONES
#endif

namespace {

using conv_geometry::Geometry;

// Output columns j with 0 <= j*s - p + b < in: [first, last).
void ValidColumns(int64_t b, int64_t in, int64_t out, int64_t s, int64_t p, int64_t *first, int64_t *last) {
  const int64_t offset = b - p;  // input column = j*s + offset
  *first = offset >= 0 ? 0 : (-offset + s - 1) / s;
  *last = offset > in - 1 ? 0 : std::min(out, (in - 1 - offset) / s + 1);
}

DEPTHWISE_CLONES void ForwardPlane(const float *x, const float *w, float *y, const Geometry &g) {
  std::fill(y, y + g.oh * g.ow, 0.f);
  for (int64_t i = 0; i < g.oh; ++i) {
    float *yr = y + i * g.ow;
    for (int64_t a = 0; a < g.kh; ++a) {
      const int64_t row = i * g.sh - g.ph + a;
      if (row < 0 || row >= g.h) continue;
      const float *xr = x + row * g.w;
      for (int64_t b = 0; b < g.kw; ++b) {
        const float weight = w[a * g.kw + b];
        int64_t first, last;
        ValidColumns(b, g.w, g.ow, g.sw, g.pw, &first, &last);
        const int64_t offset = b - g.pw;
        if (g.sw == 1) {
#pragma omp simd
          for (int64_t j = first; j < last; ++j) yr[j] += weight * xr[j + offset];
        } else {
          for (int64_t j = first; j < last; ++j) yr[j] += weight * xr[j * g.sw + offset];
        }
      }
    }
  }
}

bool Is3x3Same(const Geometry &g) {
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.ph == 1 && g.pw == 1;
}

// 3x3, stride 1, padding 1 (MobileFaceNet's depthwise layers): one pass per output row, the nine products
// summed in registers; the first and last columns and the rows at the border fall back to bounds checks.
DEPTHWISE_CLONES void Forward3x3Plane(const float *x, const float *w, float *y, const Geometry &g) {
  const int64_t h = g.h, width = g.w;
  thread_local std::vector<float> zeros;  // the padding rows above and below the image
  if (static_cast<int64_t>(zeros.size()) < width) zeros.assign(width, 0.f);
  for (int64_t i = 0; i < h; ++i) {
    float *yr = y + i * width;
    const float *rows[3];
    float wr[3][3];
    for (int a = 0; a < 3; ++a) {
      const int64_t row = i - 1 + a;
      rows[a] = row >= 0 && row < h ? x + row * width : zeros.data();
      for (int b = 0; b < 3; ++b) wr[a][b] = w[a * 3 + b];
    }
    const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
    if (width == 1) {
      yr[0] = wr[0][1] * r0[0] + wr[1][1] * r1[0] + wr[2][1] * r2[0];
      continue;
    }
    yr[0] = wr[0][1] * r0[0] + wr[0][2] * r0[1] + wr[1][1] * r1[0] + wr[1][2] * r1[1] + wr[2][1] * r2[0] +
            wr[2][2] * r2[1];
#pragma omp simd
    for (int64_t j = 1; j < width - 1; ++j) {
      yr[j] = wr[0][0] * r0[j - 1] + wr[0][1] * r0[j] + wr[0][2] * r0[j + 1] + wr[1][0] * r1[j - 1] +
              wr[1][1] * r1[j] + wr[1][2] * r1[j + 1] + wr[2][0] * r2[j - 1] + wr[2][1] * r2[j] +
              wr[2][2] * r2[j + 1];
    }
    const int64_t j = width - 1;
    yr[j] = wr[0][0] * r0[j - 1] + wr[0][1] * r0[j] + wr[1][0] * r1[j - 1] + wr[1][1] * r1[j] + wr[2][0] * r2[j - 1] +
            wr[2][1] * r2[j];
  }
}

DEPTHWISE_CLONES void BackwardDataPlane(const float *dy, const float *w, float *dx, const Geometry &g) {
  std::fill(dx, dx + g.h * g.w, 0.f);
  for (int64_t i = 0; i < g.oh; ++i) {
    const float *dyr = dy + i * g.ow;
    for (int64_t a = 0; a < g.kh; ++a) {
      const int64_t row = i * g.sh - g.ph + a;
      if (row < 0 || row >= g.h) continue;
      float *dxr = dx + row * g.w;
      for (int64_t b = 0; b < g.kw; ++b) {
        const float weight = w[a * g.kw + b];
        int64_t first, last;
        ValidColumns(b, g.w, g.ow, g.sw, g.pw, &first, &last);
        const int64_t offset = b - g.pw;
        if (g.sw == 1) {
#pragma omp simd
          for (int64_t j = first; j < last; ++j) dxr[j + offset] += weight * dyr[j];
        } else {
          for (int64_t j = first; j < last; ++j) dxr[j * g.sw + offset] += weight * dyr[j];
        }
      }
    }
  }
}

// Adds one plane's sum_{i,j} dy[i,j] x[i*sh - ph + a, j*sw - pw + b] to total[a*kw + b]. The products are
// summed along the output columns in acc (one row of floats per tap, no reduction inside the row loop), then
// acc's columns in order.
DEPTHWISE_CLONES void WeightGradPlane(const float *x, const float *dy, double *total, const Geometry &g) {
  const int64_t taps = g.kh * g.kw;
  thread_local std::vector<float> acc;
  acc.assign(taps * g.ow, 0.f);
  for (int64_t i = 0; i < g.oh; ++i) {
    const float *dyr = dy + i * g.ow;
    for (int64_t a = 0; a < g.kh; ++a) {
      const int64_t row = i * g.sh - g.ph + a;
      if (row < 0 || row >= g.h) continue;
      const float *xr = x + row * g.w;
      for (int64_t b = 0; b < g.kw; ++b) {
        float *accr = acc.data() + (a * g.kw + b) * g.ow;
        int64_t first, last;
        ValidColumns(b, g.w, g.ow, g.sw, g.pw, &first, &last);
        const int64_t offset = b - g.pw;
        if (g.sw == 1) {
#pragma omp simd
          for (int64_t j = first; j < last; ++j) accr[j] += dyr[j] * xr[j + offset];
        } else {
          for (int64_t j = first; j < last; ++j) accr[j] += dyr[j] * xr[j * g.sw + offset];
        }
      }
    }
  }
  for (int64_t t = 0; t < taps; ++t) {
    const float *accr = acc.data() + t * g.ow;
    float sum = 0.f;
    for (int64_t j = 0; j < g.ow; ++j) sum += accr[j];
    total[t] += sum;
  }
}

// The kernel covers the whole unpadded plane (MobileFaceNet's linear7): one output per plane.
bool IsGlobal(const Geometry &g) {
  return g.oh == 1 && g.ow == 1 && g.ph == 0 && g.pw == 0 && g.kh == g.h && g.kw == g.w;
}

DEPTHWISE_CLONES float GlobalForwardPlane(const float *x, const float *w, int64_t size) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t k = 0; k < size; ++k) sum += w[k] * x[k];
  return sum;
}

DEPTHWISE_CLONES void ScaledPlane(const float *v, float scale, float *out, int64_t size) {
#pragma omp simd
  for (int64_t k = 0; k < size; ++k) out[k] = scale * v[k];
}

DEPTHWISE_CLONES void AddScaledPlane(const float *v, float scale, float *out, int64_t size) {
#pragma omp simd
  for (int64_t k = 0; k < size; ++k) out[k] += scale * v[k];
}

}  // namespace

extern "C" void DepthwiseSetThreads(int threads) { kernel_threads::Set(threads); }

// params: x (N, C, H, W), w (C, 1, kh, kw), geometry int32 (sh, sw, ph, pw) -> y (N, C, OH, OW)
extern "C" int DepthwiseForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  Geometry g;
  if (nparam != 4 ||
      !conv_geometry::Read(ndims, shapes, dtypes, 0, 1, 2, 3, static_cast<const int32_t *>(params[2]), true, &g)) {
    return 1;
  }
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[3]);
  const int64_t planes = g.batch * g.channels, in_size = g.h * g.w, out_size = g.oh * g.ow, taps = g.kh * g.kw;
  const bool global = IsGlobal(g), three = Is3x3Same(g);
#pragma omp parallel for schedule(static) num_threads(kernel_threads::Count(planes * out_size * taps))
  for (int64_t p = 0; p < planes; ++p) {
    const float *wc = w + (p % g.channels) * taps;
    if (global) {
      y[p] = GlobalForwardPlane(x + p * in_size, wc, in_size);
    } else if (three) {
      Forward3x3Plane(x + p * in_size, wc, y + p * out_size, g);
    } else {
      ForwardPlane(x + p * in_size, wc, y + p * out_size, g);
    }
  }
  return 0;
}

// params: dy (N, C, OH, OW), x (N, C, H, W), w (C, 1, kh, kw), geometry int32 (sh, sw, ph, pw)
//   -> dx (N, C, H, W), dw (C, 1, kh, kw)
extern "C" int DepthwiseBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *stream, void *extra) {
  Geometry g;
  if (nparam != 6 ||
      !conv_geometry::Read(ndims, shapes, dtypes, 1, 2, 3, 0, static_cast<const int32_t *>(params[3]), true, &g)) {
    return 1;
  }
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float *w = static_cast<const float *>(params[2]);
  float *dx = static_cast<float *>(params[4]);
  float *dw = static_cast<float *>(params[5]);
  const int64_t planes = g.batch * g.channels, in_size = g.h * g.w, out_size = g.oh * g.ow, taps = g.kh * g.kw;
  const bool global = IsGlobal(g), three = Is3x3Same(g);
#pragma omp parallel num_threads(kernel_threads::Count(planes * out_size * taps))
  {
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const float *wc = w + (p % g.channels) * taps;
      if (global) {
        ScaledPlane(wc, dy[p], dx + p * in_size, in_size);
      } else if (three) {  // stride 1, padding 1: dx is dy correlated with the flipped kernel, same padding
        const float flipped[9] = {wc[8], wc[7], wc[6], wc[5], wc[4], wc[3], wc[2], wc[1], wc[0]};
        Forward3x3Plane(dy + p * out_size, flipped, dx + p * in_size, g);
      } else {
        BackwardDataPlane(dy + p * out_size, wc, dx + p * in_size, g);
      }
    }
#pragma omp for schedule(static)
    for (int64_t c = 0; c < g.channels; ++c) {
      if (global) {
        std::vector<float> acc(taps, 0.f);
        for (int64_t n = 0; n < g.batch; ++n) {
          const int64_t plane = n * g.channels + c;
          AddScaledPlane(x + plane * in_size, dy[plane], acc.data(), taps);
        }
        std::copy(acc.begin(), acc.end(), dw + c * taps);
        continue;
      }
      std::vector<double> total(taps, 0.0);
      for (int64_t n = 0; n < g.batch; ++n) {
        const int64_t plane = n * g.channels + c;
        WeightGradPlane(x + plane * in_size, dy + plane * out_size, total.data(), g);
      }
      for (int64_t t = 0; t < taps; ++t) dw[c * taps + t] = static_cast<float>(total[t]);
    }
  }
  return 0;
}
