"""Dense 2-D convolution (groups 1) through oneDNN with blocked layouts, and what the convolution kernels of
src/kernels share on the Python side (the AOT operator pair and the cell around it, also used by
src/network/depthwise.py).

Two kernels behind one parameter layout (``weight`` (O, I, kh, kw), optional ``bias`` (O,), as ``nn.Conv2d``'s, so
checkpoints are interchangeable):

``native``   ``nn.Conv2d``, on every device; what ``export.py`` always uses.
``cpu_aot``  ``src/kernels/conv_onednn.cc`` as an AOT custom operator with its own backward. MindSpore 2.10's CPU
             Conv2D and its gradients call oneDNN with plain NCHW / OIHW memory, for which oneDNN runs im2col +
             GEMM; the kernel asks the same oneDNN (MindSpore's libdnnl.so.3) for its direct JIT convolution with
             the blocked layouts it prefers and reorders from and to NCHW inside the operator, as PyTorch does
             (benchmarks/bench_ops.py, conv case). oneDNN splits the weight-gradient reduction by thread, so
             dw may change in the last bits with the thread count.

A backbone's dense convolutions are built with ``conv2d(kernel, ...)``; ``resolve_conv_kernel`` turns the config's
``conv_kernel`` (auto/native/cpu_aot) into one of the two. src/network/fold_bn.py folds a BatchNorm into either.
"""

import functools

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer

from src.kernels.onednn import compile_flags
from src.network.cpu_kernels import build_library, check_kernel, kernel_library, resolve_kernel

SOURCE = "conv_onednn.cc"


def pair(value):
    """An int or a pair of ints as a (height, width) tuple."""
    return (value, value) if isinstance(value, int) else tuple(value)


def output_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def native_padding(padding):
    """Symmetric zero padding (an int or (height, width)) as nn.Conv2d takes it (top, bottom, left, right)."""
    return padding if isinstance(padding, int) else (padding[0], padding[0], padding[1], padding[1])


@functools.cache
def convolution_op(library, name, stride, padding):
    """The forward custom operator ``<name>Forward`` of a convolution kernel library (x, w, geometry -> y) for one
    (stride, padding), its bprop the library's ``<name>Backward`` ((dy, x, w, geometry) -> (dx, dw)); shared by
    the cells that have this geometry (the output shape depends on it; the kernel reads it from the int32
    geometry input (sh, sw, ph, pw))."""
    backward = ops.Custom(
        f"{library}:{name}Backward",
        out_shape=lambda dy, x, w, geometry: (x, w),
        out_dtype=lambda dy, x, w, geometry: (x, w),
        func_type="aot",
    )

    def bprop(x, w, geometry, out, dout):
        dx, dw = backward(dout, x, w, geometry)
        return dx, dw, ops.zeros_like(geometry)

    def shape(x, w, geometry):
        n, _, h, width = x
        return [n, w[0]] + [output_size(s, k, st, p) for s, k, st, p in zip((h, width), w[2:], stride, padding)]

    return ops.Custom(
        f"{library}:{name}Forward",
        out_shape=shape,
        out_dtype=lambda x, w, geometry: x,
        func_type="aot",
        bprop=bprop,
    )


class KernelConv2d(nn.Cell):
    """A convolution through a C++ kernel library of src/kernels (float32 NCHW, CPU): parameter ``weight`` of
    ``weight_shape`` (nn.Conv2d's), plus ``bias`` (out channels,) when ``has_bias``. ``padding``: symmetric zero
    padding, int or (h, w). ``arguments``: what a subclass's constructor takes before ``has_bias`` (fold_bn.py
    rebuilds a cell from them)."""

    def __init__(self, library, name, weight_shape, stride, padding, has_bias, weight_init, bias_init, arguments):
        super().__init__()
        self.arguments = arguments
        self.out_channels, self.kernel_size = weight_shape[0], tuple(weight_shape[2:])
        self.stride, self.padding = pair(stride), pair(padding)
        self.weight = Parameter(initializer(weight_init, weight_shape, ms.float32), name="weight")
        bias = initializer(bias_init, (self.out_channels,), ms.float32) if has_bias else None
        self.bias = Parameter(bias, name="bias") if has_bias else None
        self.geometry = Tensor(np.array(self.stride + self.padding, np.int32))
        self.forward = convolution_op(library, name, self.stride, self.padding)

    def construct(self, x):
        y = self.forward(x, self.weight, self.geometry)
        if self.bias is not None:
            # BiasAdd, not y + bias.reshape(1, C, 1, 1): after the custom operator, that broadcast Add kept every
            # intermediate output of a GRAPH alive (20 such 1x1 convolutions on 64x64x56x48: 4,087 MiB peak RSS
            # against 720; MobileFaceNet with folded BatchNorms at batch 64: 3,540 against 773 unfolded).
            y = ops.bias_add(y, self.bias)
        return y


class Conv2d(KernelConv2d):
    """A dense convolution through ``src/kernels/conv_onednn.cc``, with nn.Conv2d's parameters."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        has_bias=False,
        weight_init="normal",
        bias_init="zeros",
    ):
        super().__init__(
            conv_library(),
            "Conv",
            (out_channels, in_channels) + pair(kernel_size),
            stride,
            padding,
            has_bias,
            weight_init,
            bias_init,
            (in_channels, out_channels, kernel_size, stride, padding),
        )
        self.in_channels = in_channels


def conv2d(kernel, in_channels, out_channels, kernel_size, stride=1, padding=0, **init):
    """A dense convolution with the ``kernel`` implementation ("native": ``nn.Conv2d``, "cpu_aot": ``Conv2d``);
    ``padding`` is symmetric zero padding, an int or (height, width); ``init``: has_bias, weight_init, bias_init
    as nn.Conv2d takes them."""
    if check_kernel("conv_kernel", kernel) == "cpu_aot":
        return Conv2d(in_channels, out_channels, kernel_size, stride, padding, **init)
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad", padding=native_padding(padding), **init
    )


def resolve_conv_kernel(requested, device_target):
    """``auto`` -> ``cpu_aot`` on CPU when its library builds (else ``native``, with a warning), ``native`` on
    GPU/Ascend; ``cpu_aot`` elsewhere than CPU, or when the library cannot be built, is an error."""
    return resolve_kernel("conv_kernel", requested, device_target, conv_library, "nn.Conv2d")


def conv_library():
    """The compiled oneDNN convolution library this process uses (threads: MindSpore's CPU operator count)."""
    return kernel_library(SOURCE, "ConvSetThreads", compile_flags)


def build_conv_library():
    """Compile the convolution library if needed, without loading it (before the device is set up)."""
    return build_library(SOURCE, compile_flags)
