"""PReLU (He et al., "Delving Deep into Rectifiers", ICCV 2015) through ``prelu_cpu.cc``: y = x if x > 0 else a_c x,
one slope a_c per channel c, as a stand-in for ``nn.PReLU`` that takes over its Parameter ``w``.

MindSpore 2.10's PReLU / PReLUGrad CPU kernels were the largest single gap to PyTorch in the training profile
(benchmarks/profile_train.py). This kernel's forward is branch-free, so it vectorises, and its slope gradient sums
each channel in a fixed order, so it does not change with the thread count (benchmarks/bench_ops.py, prelu case).
"""

import functools

from mindspore import nn, ops

from src.kernels.library import kernel_library


@functools.cache
def _forward_op():
    """The forward custom operator (its bprop: the backward one), shared by every CpuPReLU."""
    library = kernel_library("prelu_cpu.cc")
    backward = ops.Custom(
        f"{library}:PReLUBackward",
        out_shape=lambda dy, x, w: (x, w),
        out_dtype=lambda dy, x, w: (x, w),
        func_type="aot",
    )

    def bprop(x, w, out, dout):
        return backward(dout, x, w)

    return ops.Custom(
        f"{library}:PReLUForward", out_shape=lambda x, w: x, out_dtype=lambda x, w: x, func_type="aot", bprop=bprop
    )


class CpuPReLU(nn.Cell):
    """``layer`` (an ``nn.PReLU``) through the C++ kernel (float32, CPU), with ``layer``'s Parameter ``w``."""

    def __init__(self, layer):
        super().__init__()
        self.w = layer.w
        self.forward = _forward_op()

    def construct(self, x):
        return self.forward(x, self.w)
