// Dense 2-D convolution (groups 1, no bias) forward and backward for float32 NCHW tensors on CPU, as MindSpore
// AOT custom operators, through oneDNN with the layouts its fastest implementation wants. Built and cached by
// src/kernels/build.py against MindSpore's own libdnnl.so.3, with the headers of third_party/onednn
// (src/kernels/onednn.py); used by src/kernels/conv.py.
//
// MindSpore 2.10's CPU Conv2D and its gradients call the same oneDNN with plain NCHW / OIHW memory, for which
// oneDNN has only im2col + GEMM (gemm:jit). Here each primitive is created with format_tag::any, so oneDNN
// picks its direct JIT convolution and a blocked layout (nChw8c, OIhw8i8o, ...); the operands are reordered
// from MindSpore's plain tensors into that layout and the results back, all inside the operator (the network's
// tensors stay NCHW between operators). Primitives and reorders are created once per shape, geometry and thread
// count and cached; the blocked copies live in a scratch buffer per calling thread (ThreadScratch).
//
// Stride and padding arrive as an int32 tensor (sh, sw, ph, pw) (conv_geometry.h). The backward computes dx
// (backward-data) and dw (backward-weights) from one reordered dy when both primitives want the same layout.
//
// Threads: MindSpore's oneDNN is built for the THREADPOOL runtime, where a primitive runs in parallel only on a
// stream given a threadpool; OmpThreadpool runs oneDNN's closures on an OpenMP team of kernel_threads::Threads()
// (ConvSetThreads: MindSpore's CPU thread count, src/kernels/library.py). oneDNN splits the
// backward-weights reduction by thread, so dw may differ in the last bits between thread counts.

#include <array>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>

#include "conv_geometry.h"
#include "kernel_threads.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "oneapi/dnnl/dnnl_threadpool.hpp"

namespace {

using conv_geometry::Geometry;
using dnnl::memory;

class OmpThreadpool : public dnnl::threadpool_interop::threadpool_iface {
 public:
  int get_num_threads() const override { return kernel_threads::Threads(); }
  bool get_in_parallel() const override { return omp_in_parallel(); }
  uint64_t get_flags() const override { return 0; }  // synchronous: parallel_for returns when fn is done
  void parallel_for(int n, const std::function<void(int, int)> &fn) override {
#pragma omp parallel for schedule(static) num_threads(std::max(1, std::min(n, get_num_threads())))
    for (int i = 0; i < n; ++i) fn(i, n);
  }
};

dnnl::engine &Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

constexpr size_t kAlignment = 64;

struct FreeAligned {
  void operator()(char *p) const { std::free(p); }
};

// The blocked copies of one call's operands, in one buffer per calling thread, grown to the largest call and
// reused: the cached primitives keep only layouts, so memory does not grow with the number of shapes.
char *ThreadScratch(size_t bytes) {
  thread_local std::unique_ptr<char, FreeAligned> buffer;
  thread_local size_t capacity = 0;
  if (bytes > capacity) {
    buffer.reset(static_cast<char *>(std::aligned_alloc(kAlignment, bytes)));
    if (!buffer) throw std::bad_alloc();
    capacity = bytes;
  }
  return buffer.get();
}

// One operand as MindSpore holds it (plain) and as the primitive wants it (inner), with the reorder between
// them (plain -> inner for inputs, inner -> plain for outputs) and the inner copy's place in the call's scratch
// buffer, when they differ.
struct Operand {
  memory::desc plain, inner;
  dnnl::reorder reorder;
  size_t offset = 0;

  // scratch_bytes: the scratch the call needs so far, grown by this operand's copy.
  Operand(const memory::desc &plain_desc, const memory::desc &inner_desc, bool input, size_t *scratch_bytes)
      : plain(plain_desc), inner(inner_desc) {
    if (plain == inner) return;
    offset = *scratch_bytes;
    *scratch_bytes += (inner.get_size() + kAlignment - 1) / kAlignment * kAlignment;
    const memory user(plain, Engine(), DNNL_MEMORY_NONE), copy(inner, Engine(), DNNL_MEMORY_NONE);
    reorder = input ? dnnl::reorder(user, copy) : dnnl::reorder(copy, user);
  }

  bool Reordered() const { return plain != inner; }

  // The memory the primitive reads, data reordered into the scratch if needed.
  memory Input(void *data, char *scratch, dnnl::stream &stream) const {
    memory user(plain, Engine(), data);
    if (!Reordered()) return user;
    memory copy(inner, Engine(), scratch + offset);
    reorder.execute(stream, user, copy);
    return copy;
  }

  // The memory the primitive writes; Finish then reorders it into data if needed.
  memory Output(void *data, char *scratch) const {
    return Reordered() ? memory(inner, Engine(), scratch + offset) : memory(plain, Engine(), data);
  }

  void Finish(memory &written, void *data, dnnl::stream &stream) const {
    if (!Reordered()) return;
    memory user(plain, Engine(), data);
    reorder.execute(stream, written, user);
  }
};

memory::desc Plain(const memory::dims &dims, memory::format_tag tag) {
  return memory::desc(dims, memory::data_type::f32, tag);
}

memory::desc Any(const memory::dims &dims) { return memory::desc(dims, memory::data_type::f32, memory::format_tag::any); }

struct Descs {
  memory::dims src, weights, dst, strides, padding;
};

Descs DescsOf(const Geometry &g) {
  return {{g.batch, g.channels, g.h, g.w}, {g.out_channels, g.channels, g.kh, g.kw}, {g.batch, g.out_channels, g.oh, g.ow},
          {g.sh, g.sw},                    {g.ph, g.pw}};
}

dnnl::convolution_forward::primitive_desc ForwardDesc(const Geometry &g, dnnl::prop_kind kind) {
  // oneDNN sizes its work split by the concurrency of the creating thread (the THREADPOOL default is the
  // hardware's): set it to the threads OmpThreadpool will run.
  dnnl_threadpool_interop_set_max_concurrency(kernel_threads::Threads());
  const Descs d = DescsOf(g);
  return dnnl::convolution_forward::primitive_desc(Engine(), kind, dnnl::algorithm::convolution_direct, Any(d.src),
                                                   Any(d.weights), Any(d.dst), d.strides, d.padding, d.padding);
}

struct Forward {
  dnnl::convolution_forward::primitive_desc desc;
  dnnl::convolution_forward conv;
  size_t scratch_bytes = 0;
  Operand x, w, y;

  explicit Forward(const Geometry &g)
      : desc(ForwardDesc(g, dnnl::prop_kind::forward_training)),
        conv(desc),
        x(Plain(DescsOf(g).src, memory::format_tag::nchw), desc.src_desc(), true, &scratch_bytes),
        w(Plain(DescsOf(g).weights, memory::format_tag::oihw), desc.weights_desc(), true, &scratch_bytes),
        y(Plain(DescsOf(g).dst, memory::format_tag::nchw), desc.dst_desc(), false, &scratch_bytes) {}

  void Run(void *xp, void *wp, void *yp) const {
    char *scratch = ThreadScratch(scratch_bytes);
    OmpThreadpool pool;
    dnnl::stream stream = dnnl::threadpool_interop::make_stream(Engine(), &pool);
    memory out = y.Output(yp, scratch);
    conv.execute(stream, {{DNNL_ARG_SRC, x.Input(xp, scratch, stream)},
                          {DNNL_ARG_WEIGHTS, w.Input(wp, scratch, stream)},
                          {DNNL_ARG_DST, out}});
    y.Finish(out, yp, stream);
    stream.wait();
  }
};

struct Backward {
  dnnl::convolution_backward_data::primitive_desc data_desc;
  dnnl::convolution_backward_weights::primitive_desc weights_desc;
  dnnl::convolution_backward_data data;
  dnnl::convolution_backward_weights weights;
  size_t scratch_bytes = 0;
  Operand dy_data, w, dx, dy_weights, x, dw;

  static dnnl::convolution_backward_data::primitive_desc DataDesc(const Geometry &g) {
    const Descs d = DescsOf(g);
    return dnnl::convolution_backward_data::primitive_desc(
        Engine(), dnnl::algorithm::convolution_direct, Any(d.src), Any(d.weights), Any(d.dst), d.strides, d.padding,
        d.padding, ForwardDesc(g, dnnl::prop_kind::forward_training));
  }

  static dnnl::convolution_backward_weights::primitive_desc WeightsDesc(const Geometry &g) {
    const Descs d = DescsOf(g);
    return dnnl::convolution_backward_weights::primitive_desc(
        Engine(), dnnl::algorithm::convolution_direct, Any(d.src), Any(d.weights), Any(d.dst), d.strides, d.padding,
        d.padding, ForwardDesc(g, dnnl::prop_kind::forward_training));
  }

  explicit Backward(const Geometry &g)
      : data_desc(DataDesc(g)),
        weights_desc(WeightsDesc(g)),
        data(data_desc),
        weights(weights_desc),
        dy_data(Plain(DescsOf(g).dst, memory::format_tag::nchw), data_desc.diff_dst_desc(), true, &scratch_bytes),
        w(Plain(DescsOf(g).weights, memory::format_tag::oihw), data_desc.weights_desc(), true, &scratch_bytes),
        dx(Plain(DescsOf(g).src, memory::format_tag::nchw), data_desc.diff_src_desc(), false, &scratch_bytes),
        dy_weights(Plain(DescsOf(g).dst, memory::format_tag::nchw),
                   // the same layout as dy_data's: reordered once (dy_weights then has no buffer of its own)
                   weights_desc.diff_dst_desc() == data_desc.diff_dst_desc() ? Plain(DescsOf(g).dst, memory::format_tag::nchw)
                                                                              : weights_desc.diff_dst_desc(),
                   true, &scratch_bytes),
        x(Plain(DescsOf(g).src, memory::format_tag::nchw), weights_desc.src_desc(), true, &scratch_bytes),
        dw(Plain(DescsOf(g).weights, memory::format_tag::oihw), weights_desc.diff_weights_desc(), false,
           &scratch_bytes) {}

  void Run(void *dyp, void *xp, void *wp, void *dxp, void *dwp) const {
    char *scratch = ThreadScratch(scratch_bytes);
    OmpThreadpool pool;
    dnnl::stream stream = dnnl::threadpool_interop::make_stream(Engine(), &pool);
    const memory dy = dy_data.Input(dyp, scratch, stream);
    memory dx_out = dx.Output(dxp, scratch), dw_out = dw.Output(dwp, scratch);
    data.execute(stream, {{DNNL_ARG_DIFF_DST, dy},
                          {DNNL_ARG_WEIGHTS, w.Input(wp, scratch, stream)},
                          {DNNL_ARG_DIFF_SRC, dx_out}});
    dx.Finish(dx_out, dxp, stream);
    const bool shared = weights_desc.diff_dst_desc() == data_desc.diff_dst_desc();
    weights.execute(stream, {{DNNL_ARG_DIFF_DST, shared ? dy : dy_weights.Input(dyp, scratch, stream)},
                             {DNNL_ARG_SRC, x.Input(xp, scratch, stream)},
                             {DNNL_ARG_DIFF_WEIGHTS, dw_out}});
    dw.Finish(dw_out, dwp, stream);
    stream.wait();
  }
};

using Key = std::array<int64_t, 14>;

// The thread count is part of the key: oneDNN fixes a primitive's work split when it is created.
Key KeyOf(const Geometry &g) {
  return {g.batch, g.channels, g.h, g.w, g.out_channels, g.kh, g.kw, g.oh, g.ow, g.sh, g.sw, g.ph, g.pw,
          kernel_threads::Threads()};
}

// The cached primitives of geometry g for the current thread count (created on first use). They are immutable
// once created, so calls from several threads may run them at once (each with its own scratch).
template <typename T>
const T &Cached(const Geometry &g) {
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<T>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<T> &entry = cache[KeyOf(g)];
  if (!entry) entry = std::make_unique<T>(g);
  return *entry;
}

}  // namespace

extern "C" void ConvSetThreads(int threads) { kernel_threads::Set(threads); }

// params: x (N, C, H, W), w (O, C, kh, kw), geometry int32 (sh, sw, ph, pw) -> y (N, O, OH, OW)
extern "C" int ConvForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                           void *extra) {
  Geometry g;
  if (nparam != 4 ||
      !conv_geometry::Read(ndims, shapes, dtypes, 0, 1, 2, 3, static_cast<const int32_t *>(params[2]), false, &g)) {
    return 1;
  }
  try {
    Cached<Forward>(g).Run(params[0], params[1], params[3]);
  } catch (const dnnl::error &) {
    return 2;
  }
  return 0;
}

// params: dy (N, O, OH, OW), x (N, C, H, W), w (O, C, kh, kw), geometry int32 (sh, sw, ph, pw)
//   -> dx (N, C, H, W), dw (O, C, kh, kw)
extern "C" int ConvBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                            void *extra) {
  Geometry g;
  if (nparam != 6 ||
      !conv_geometry::Read(ndims, shapes, dtypes, 1, 2, 3, 0, static_cast<const int32_t *>(params[3]), false, &g)) {
    return 1;
  }
  try {
    Cached<Backward>(g).Run(params[0], params[1], params[2], params[4], params[5]);
  } catch (const dnnl::error &) {
    return 2;
  }
  return 0;
}
