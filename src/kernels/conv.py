"""Convolutions through the C++ kernels, as stand-ins for ``nn.Conv2d`` that take over its Parameters.

``conv_onednn.cc`` (dense, groups 1): MindSpore 2.10's CPU Conv2D and its gradients call oneDNN with plain NCHW /
OIHW memory, for which oneDNN runs im2col + GEMM; the kernel asks the same oneDNN (MindSpore's libdnnl.so.3) for its
direct JIT convolution with the blocked layouts it prefers and reorders from and to NCHW inside the operator, as
PyTorch does (benchmarks/bench_ops.py, conv case). oneDNN splits the weight-gradient reduction by thread, so dw may
change in the last bits with the thread count.

``depthwise_cpu.cc`` (groups = channels, multiplier 1): MindSpore 2.10 runs grouped convolutions through oneDNN's
``gemm:jit`` path, one small GEMM per group; the kernel's weight gradient sums each channel in a fixed order, so it
does not change with the thread count (benchmarks/bench_ops.py, depthwise case).

Both are AOT custom operators with their own backward, float32 NCHW, CPU only; the bias (a convolution a BatchNorm
was folded into) is added with BiasAdd.
"""

import functools

import numpy as np
from mindspore import Tensor, nn, ops

from src.kernels.library import kernel_library

DENSE, DEPTHWISE = ("conv_onednn.cc", "Conv"), ("depthwise_cpu.cc", "Depthwise")


def output_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


@functools.cache
def convolution_op(source_name, name, stride, padding):
    """The forward custom operator ``<name>Forward`` of a convolution kernel library (x, w, geometry -> y) for one
    (stride, padding), its bprop the library's ``<name>Backward`` ((dy, x, w, geometry) -> (dx, dw)); shared by
    the cells that have this geometry (the output shape depends on it; the kernel reads it from the int32
    geometry input (sh, sw, ph, pw))."""
    library = kernel_library(source_name)
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


def symmetric_padding(layer):
    """(height, width) zero padding of an ``nn.Conv2d`` whose padding is the same on both sides, else None."""
    if layer.pad_mode != "pad":
        return (0, 0) if layer.pad_mode == "valid" else None
    padding = layer.padding
    if isinstance(padding, int):
        return (padding, padding)
    top, bottom, left, right = padding
    return (top, left) if top == bottom and left == right else None


def kernel_of(layer):
    """(source, operator name) of the kernel that can stand in for the ``nn.Conv2d`` ``layer``, or None: dense
    (groups 1) or depthwise (groups = in = out channels), NCHW, no dilation, symmetric zero padding."""
    if layer.data_format != "NCHW" or tuple(layer.dilation) != (1, 1) or symmetric_padding(layer) is None:
        return None
    if layer.group == layer.in_channels == layer.out_channels:
        return DEPTHWISE
    return DENSE if layer.group == 1 else None


class KernelConv2d(nn.Cell):
    """``layer`` (an ``nn.Conv2d`` that ``kernel_of`` accepts) through its C++ kernel, with ``layer``'s own
    ``weight`` and ``bias`` Parameters."""

    def __init__(self, layer):
        super().__init__()
        source_name, name = kernel_of(layer)
        self.weight, self.bias = layer.weight, layer.bias if layer.has_bias else None
        stride, padding = tuple(layer.stride[-2:]), symmetric_padding(layer)
        self.geometry = Tensor(np.array(stride + padding, np.int32))
        self.forward = convolution_op(source_name, name, stride, padding)

    def construct(self, x):
        y = self.forward(x, self.weight, self.geometry)
        if self.bias is not None:
            # BiasAdd, not y + bias.reshape(1, C, 1, 1): after the custom operator, that broadcast Add kept every
            # intermediate output of a GRAPH alive.
            y = ops.bias_add(y, self.bias)
        return y
