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

from mindspore import nn

from src.network.conv import KernelConv2d, native_padding, pair
from src.network.cpu_kernels import build_library, check_kernel, kernel_library, resolve_kernel

SOURCE = "depthwise_cpu.cc"


def depthwise_conv2d(kernel, channels, kernel_size, stride=1, padding=0, weight_init="normal"):
    """A bias-free depthwise convolution of ``channels`` channels with the ``kernel`` implementation ("native":
    ``nn.Conv2d(group=channels)``, "cpu_aot": ``DepthwiseConv2d``); ``padding`` is symmetric zero padding, an int
    or (height, width)."""
    if check_kernel("depthwise_kernel", kernel) == "cpu_aot":
        return DepthwiseConv2d(channels, kernel_size, stride, padding, weight_init=weight_init)
    return nn.Conv2d(
        channels,
        channels,
        kernel_size,
        stride=stride,
        pad_mode="pad",
        padding=native_padding(padding),
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
    return kernel_library(SOURCE, "DepthwiseSetThreads")


def build_depthwise_library():
    """Compile the depthwise library if needed, without loading it (before the device is set up)."""
    return build_library(SOURCE)


class DepthwiseConv2d(KernelConv2d):
    """Depthwise convolution through ``src/kernels/depthwise_cpu.cc`` (float32 NCHW, CPU): parameter ``weight``
    (channels, 1, kh, kw) as ``nn.Conv2d(group=channels)``'s, plus ``bias`` (channels,) when ``has_bias`` (the
    BatchNorm-folded layer of src/network/fold_bn.py). ``padding``: symmetric zero padding, int or (h, w)."""

    def __init__(
        self, channels, kernel_size, stride=1, padding=0, has_bias=False, weight_init="normal", bias_init="zeros"
    ):
        super().__init__(
            depthwise_library(),
            "Depthwise",
            (channels, 1) + pair(kernel_size),
            stride,
            padding,
            has_bias,
            weight_init,
            bias_init,
            (channels, kernel_size, stride, padding),
        )
        self.in_channels = channels
