// Training-mode batch normalisation forward and backward for float32 NC... tensors (NCHW) on CPU, as MindSpore AOT
// custom operators (ops.Custom(func_type="aot")). Built and cached by src/kernels/build.py; used by
// src/kernels/batchnorm.py.
//
// Per channel c, over its M = N * H * W values:
//   mean = sum(x) / M,   var = sum((x - mean)^2) / M (biased),   invstd = 1 / sqrt(var + eps)
//   y = (x - mean) * invstd * gamma + beta
//   moving_mean' = momentum * moving_mean + (1 - momentum) * mean                  (MindSpore's momentum, 0.9)
//   moving_var'  = momentum * moving_var  + (1 - momentum) * var * M / (M - 1)     (unbiased, as nn.BatchNorm2d;
//                  M = 1: var, which is 0, where nn.BatchNorm2d writes NaN)
// and backward, with xhat = (x - mean) * invstd:
//   dbeta = sum(dy),   dgamma = sum(dy * xhat),   dx = gamma * invstd / M * (M dy - dbeta - xhat dgamma)
//
// The statistics are two-pass (the mean, then the sums of x - mean and of its square, the first correcting for the
// rounding of the mean) and accumulate in double over blocks of at most kBlock values summed in float (vectorised),
// so they do not drift with M. The mean is kept as a float m plus the float residual r = mean - m: x - m is exact
// in float for x near the mean, and r enters once per channel, so a channel with a large mean and a small spread
// (1000 +- 0.01) is normalised as accurately as one around 0; forward and backward use the same m, r and invstd,
// which the forward saves as a (3, C) output for the backward. eps and momentum arrive as a float32 input (eps,
// momentum) that the Python cell holds as a constant (see depthwise_cpu.cc on why not AOT attributes).
//
// Parallelism: over channels, each channel's sums taken by one thread in a fixed order (planes in batch order,
// blocks in plane order), so every output is bit-identical for any thread count. BatchNormSetThreads sets the
// thread count (src/kernels/library.py passes the process's MindSpore CPU thread count; kernel_threads.h).
//
// Each channel's values are read three times forward (sum, centred sums, normalise) and twice backward, from the
// cache after the first (a channel of a 32 x 64 x 56 x 48 tensor is 344 KB): the kernel runs at memory speed.
// AVX2 clones of the loops (target_clones, as depthwise_cpu.cc has) gained nothing over the x86-64 baseline, so
// there are none.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernel_threads.h"

namespace {

constexpr int64_t kBlock = 1024;  // values summed in float before the sum goes into a double

bool IsFloat32(const char *dtype) { return kernel_threads::IsDtype(dtype, "float32"); }

int64_t PlaneSize(int ndim, const int64_t *shape) {
  int64_t hw = 1;
  for (int i = 2; i < ndim; ++i) hw *= shape[i];
  return hw;
}

// sum(x[0..n)), n <= kBlock.
float BlockSum(const float *x, int64_t n) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += x[j];
  return sum;
}

// sum(x - centre) and sum((x - centre)^2) over x[0..n), n <= kBlock.
void BlockCentredSums(const float *x, int64_t n, float centre, float *sum, float *squares) {
  float s = 0.f, q = 0.f;
#pragma omp simd reduction(+ : s, q)
  for (int64_t j = 0; j < n; ++j) {
    const float d = x[j] - centre;
    s += d;
    q += d * d;
  }
  *sum = s;
  *squares = q;
}

// y = (x - centre) * scale + shift over n values.
void Normalise(const float *x, float *y, int64_t n, float centre, float scale, float shift) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) y[j] = (x[j] - centre) * scale + shift;
}

// sum(dy) and sum(dy * (x - centre)) over n <= kBlock values.
void BlockGradientSums(const float *dy, const float *x, int64_t n, float centre, float *sum, float *products) {
  float s = 0.f, p = 0.f;
#pragma omp simd reduction(+ : s, p)
  for (int64_t j = 0; j < n; ++j) {
    const float g = dy[j];
    s += g;
    p += g * (x[j] - centre);
  }
  *sum = s;
  *products = p;
}

// dx = a dy + b (x - centre) + c over n values.
void InputGradient(const float *dy, const float *x, float *dx, int64_t n, float centre, float a, float b,
                   float c) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dx[j] = a * dy[j] + b * (x[j] - centre) + c;
}

// The planes of channel c of an (N, C, hw) tensor, in batch order, cut into blocks of at most kBlock values:
// calls visit(offset, length) for each block.
template <typename Visit>
void ForEachBlock(int64_t batch, int64_t channels, int64_t hw, int64_t c, Visit visit) {
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t plane = (n * channels + c) * hw;
    for (int64_t start = 0; start < hw; start += kBlock) visit(plane + start, std::min(kBlock, hw - start));
  }
}

}  // namespace

extern "C" void BatchNormSetThreads(int threads) { kernel_threads::Set(threads); }

// params: x (N, C, ...), gamma (C), beta (C), moving_mean (C), moving_var (C), hyper (2: eps, momentum)
//   -> y (N, C, ...), saved (3, C: m, r, invstd), new moving_mean (C), new moving_var (C)
extern "C" int BatchNormForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (nparam != 10 || ndims[0] < 2) return 1;
  for (int i = 0; i < nparam; ++i) {
    if (!IsFloat32(dtypes[i])) return 1;
  }
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float *moving_mean = static_cast<const float *>(params[3]);
  const float *moving_var = static_cast<const float *>(params[4]);
  const float *hyper = static_cast<const float *>(params[5]);
  float *y = static_cast<float *>(params[6]);
  float *saved = static_cast<float *>(params[7]);
  float *new_mean = static_cast<float *>(params[8]);
  float *new_var = static_cast<float *>(params[9]);
  const int64_t batch = shapes[0][0], channels = shapes[0][1];
  const int64_t hw = PlaneSize(ndims[0], shapes[0]);
  const int64_t count = batch * hw;
  const double eps = hyper[0], momentum = hyper[1];
  const double unbias = count > 1 ? static_cast<double>(count) / static_cast<double>(count - 1) : 1.0;
#pragma omp parallel for schedule(static) num_threads(kernel_threads::Count(batch * channels * hw))
  for (int64_t c = 0; c < channels; ++c) {
    double total = 0.0;
    ForEachBlock(batch, channels, hw, c, [&](int64_t offset, int64_t n) { total += BlockSum(x + offset, n); });
    const float centre = static_cast<float>(total / count);
    double sum = 0.0, squares = 0.0;
    ForEachBlock(batch, channels, hw, c, [&](int64_t offset, int64_t n) {
      float s, q;
      BlockCentredSums(x + offset, n, centre, &s, &q);
      sum += s;
      squares += q;
    });
    const double offset_mean = sum / count;  // mean - centre
    const double mean = centre + offset_mean;
    const double var = std::max(squares / count - offset_mean * offset_mean, 0.0);
    const double invstd = 1.0 / std::sqrt(var + eps);
    const float m = static_cast<float>(mean);
    const float r = static_cast<float>(mean - m);
    const double scale = gamma[c] * static_cast<double>(static_cast<float>(invstd));
    const float shift = static_cast<float>(beta[c] - r * scale);
    ForEachBlock(batch, channels, hw, c, [&](int64_t offset, int64_t n) {
      Normalise(x + offset, y + offset, n, m, static_cast<float>(scale), shift);
    });
    saved[c] = m;
    saved[channels + c] = r;
    saved[2 * channels + c] = static_cast<float>(invstd);
    new_mean[c] = static_cast<float>(momentum * moving_mean[c] + (1.0 - momentum) * mean);
    new_var[c] = static_cast<float>(momentum * moving_var[c] + (1.0 - momentum) * var * unbias);
  }
  return 0;
}

// params: dy (N, C, ...), x (N, C, ...), gamma (C), saved (3, C: m, r, invstd) -> dx (N, C, ...), dgamma (C),
// dbeta (C)
extern "C" int BatchNormBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *stream, void *extra) {
  if (nparam != 7 || ndims[1] < 2) return 1;
  for (int i = 0; i < nparam; ++i) {
    if (!IsFloat32(dtypes[i])) return 1;
  }
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float *gamma = static_cast<const float *>(params[2]);
  const float *saved = static_cast<const float *>(params[3]);
  float *dx = static_cast<float *>(params[4]);
  float *dgamma = static_cast<float *>(params[5]);
  float *dbeta = static_cast<float *>(params[6]);
  const int64_t batch = shapes[1][0], channels = shapes[1][1];
  const int64_t hw = PlaneSize(ndims[1], shapes[1]);
  const double count = static_cast<double>(batch * hw);
#pragma omp parallel for schedule(static) num_threads(kernel_threads::Count(batch * channels * hw))
  for (int64_t c = 0; c < channels; ++c) {
    const float m = saved[c];
    const double r = saved[channels + c], istd = saved[2 * channels + c];
    double sum = 0.0, products = 0.0;  // sum(dy), sum(dy (x - m))
    ForEachBlock(batch, channels, hw, c, [&](int64_t offset, int64_t n) {
      float s, p;
      BlockGradientSums(dy + offset, x + offset, n, m, &s, &p);
      sum += s;
      products += p;
    });
    products -= r * sum;  // sum(dy (x - mean))
    // dx = a dy + b (x - mean) - a sum / M = a dy + b (x - m) + shift
    const double a = gamma[c] * istd;
    const double b = -a * istd * istd * products / count;
    const double shift = -a * sum / count - b * r;
    ForEachBlock(batch, channels, hw, c, [&](int64_t offset, int64_t n) {
      InputGradient(dy + offset, x + offset, dx + offset, n, m, static_cast<float>(a), static_cast<float>(b),
                    static_cast<float>(shift));
    });
    dbeta[c] = static_cast<float>(sum);
    dgamma[c] = static_cast<float>(products * istd);
  }
  return 0;
}
