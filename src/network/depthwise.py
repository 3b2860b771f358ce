"""Depthwise 2-D convolution (one kxk filter per channel, channel multiplier 1), as MobileFaceNet's depthwise 3x3
layers and its global depthwise ``linear7`` use it.

Two kernels behind one parameter layout (a cell attribute ``weight`` of shape (C, 1, kh, kw), as
``nn.Conv2d(C, C, k, group=C)``, so checkpoints are interchangeable):

``native``   ``nn.Conv2d(group=C)``, on every device; what ``export.py`` always uses.
``cpu_aot``  ``src/kernels/depthwise_cpu.cc`` as an AOT custom operator with its own backward. On the CPU,
             MindSpore 2.10 runs grouped convolutions through oneDNN's ``gemm:jit`` path, one small GEMM per
             group; in MobileFaceNet training most of the convolution backward-weights time was these layers
             (benchmarks/onednn_paths.py). This kernel's forward + backward takes tens of ms where the grouped
             Conv2D takes hundreds to thousands on the MobileFaceNet shapes (benchmarks/bench_ops.py, depthwise
             case). Its weight gradient sums each channel in a fixed order, so it does not change with the
             thread count.

A backbone with depthwise layers takes ``depthwise_kernel`` as an argument and builds them with
``depthwise_conv2d(kernel, ...)``; ``resolve_depthwise_kernel`` turns the config's ``depthwise_kernel``
(auto/native/cpu_aot) into one of the two. ``src/network/fold_bn.py`` folds a BatchNorm into either (the cpu_aot
cell then carries a bias).
"""

import functools

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer

from src.network.cpu_kernels import check_kernel, kernel_library, resolve_kernel


def pair(value):
    """An int or a pair of ints as a (height, width) tuple."""
    return (value, value) if isinstance(value, int) else tuple(value)


def depthwise_conv2d(kernel, channels, kernel_size, stride=1, padding=0, weight_init="normal"):
    """A bias-free depthwise convolution of ``channels`` channels with the ``kernel`` implementation ("native":
    ``nn.Conv2d(group=channels)``, "cpu_aot": ``DepthwiseConv2d``); ``padding`` is symmetric zero padding, an int
    or (height, width)."""
    if check_kernel("depthwise_kernel", kernel) == "cpu_aot":
        return DepthwiseConv2d(channels, kernel_size, stride, padding, weight_init=weight_init)
    if not isinstance(padding, int):
        padding = (padding[0], padding[0], padding[1], padding[1])  # nn.Conv2d: (top, bottom, left, right)
    return nn.Conv2d(
        channels,
        channels,
        kernel_size,
        stride=stride,
        pad_mode="pad",
        padding=padding,
        group=channels,
        has_bias=False,
        weight_init=weight_init,
    )


def resolve_depthwise_kernel(requested, device_target):
    """``auto`` -> ``cpu_aot`` on CPU when its library builds (else ``native``, with a warning), ``native`` on
    GPU/Ascend; ``cpu_aot`` elsewhere than CPU, or without a working compiler, is an error."""
    return resolve_kernel("depthwise_kernel", requested, device_target, depthwise_library, "nn.Conv2d(group=C)")


def depthwise_library():
    """The compiled depthwise library this process uses (threads: MindSpore's CPU operator count)."""
    return kernel_library("depthwise_cpu.cc", "DepthwiseSetThreads")


def output_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


@functools.cache
def _backward_op():
    """(dy, x, w, geometry) -> (dx, dw)."""
    return ops.Custom(
        f"{depthwise_library()}:DepthwiseBackward",
        out_shape=lambda dy, x, w, geometry: (x, w),
        out_dtype=lambda dy, x, w, geometry: (x, w),
        func_type="aot",
    )


@functools.cache
def _forward_op(stride, padding):
    """The forward custom operator for one (stride, padding) geometry, shared by the cells that have it: its
    output shape depends on them (the kernel reads them from the geometry input)."""
    backward = _backward_op()

    def bprop(x, w, geometry, out, dout):
        dx, dw = backward(dout, x, w, geometry)
        return dx, dw, ops.zeros_like(geometry)

    def shape(x, w, geometry):
        n, c, h, width = x
        return [n, c] + [output_size(s, k, st, p) for s, k, st, p in zip((h, width), w[2:], stride, padding)]

    return ops.Custom(
        f"{depthwise_library()}:DepthwiseForward",
        out_shape=shape,
        out_dtype=lambda x, w, geometry: x,
        func_type="aot",
        bprop=bprop,
    )


class DepthwiseConv2d(nn.Cell):
    """Depthwise convolution through ``src/kernels/depthwise_cpu.cc`` (float32 NCHW, CPU): parameter ``weight``
    (channels, 1, kh, kw) as ``nn.Conv2d(group=channels)``'s, plus ``bias`` (channels,) when ``has_bias`` (the
    BatchNorm-folded layer of src/network/fold_bn.py). ``padding``: symmetric zero padding, int or (h, w)."""

    def __init__(
        self, channels, kernel_size, stride=1, padding=0, has_bias=False, weight_init="normal", bias_init="zeros"
    ):
        super().__init__()
        self.in_channels = self.out_channels = channels
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        self.weight = Parameter(initializer(weight_init, (channels, 1) + self.kernel_size, ms.float32), name="weight")
        self.bias = Parameter(initializer(bias_init, (channels,), ms.float32), name="bias") if has_bias else None
        self.geometry = Tensor(np.array(self.stride + self.padding, np.int32))
        self.forward = _forward_op(self.stride, self.padding)

    def construct(self, x):
        y = self.forward(x, self.weight, self.geometry)
        if self.bias is not None:
            y = y + self.bias.reshape((1, -1, 1, 1))
        return y
