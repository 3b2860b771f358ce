"""PReLU (He et al., "Delving Deep into Rectifiers", ICCV 2015): y = x if x > 0 else a_c x, one slope a_c per
channel c.

Two kernels behind one parameter layout (a cell attribute ``w`` of shape (C,), as ``nn.PReLU``, so checkpoints
are interchangeable):

``native``   ``mindspore.nn.PReLU``, on every device; what ``export.py`` always uses.
``cpu_aot``  ``src/kernels/prelu_cpu.cc`` as an AOT custom operator with its own backward. MindSpore 2.10's
             PReLU/PReLUGrad CPU kernels were the largest single gap to PyTorch in the training profile
             (benchmarks/profile_train.py); this kernel about halves their time (benchmarks/bench_ops.py; the
             figures are in the README, "Performance"), and its slope gradient sums each channel in a fixed
             order, so it does not change with the thread count.

A backbone takes ``prelu_kernel`` as an argument and builds its PReLUs with ``prelu_class(prelu_kernel)``
(``build_backbone(..., prelu_kernel=...)`` passes it). ``resolve_prelu_kernel`` turns the config's
``prelu_kernel`` (auto/native/cpu_aot) into one of the two.
"""

import functools

import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from src.network.cpu_kernels import check_kernel, kernel_library, resolve_kernel


def prelu_class(kernel):
    """The PReLU cell class of ``kernel`` ("native" or "cpu_aot"); both are built as ``cls(channels, w=0.25)``."""
    return CpuPReLU if check_kernel("prelu_kernel", kernel) == "cpu_aot" else nn.PReLU


def resolve_prelu_kernel(requested, device_target):
    """``auto`` -> ``cpu_aot`` on CPU when its library builds (else ``native``, with a warning), ``native`` on
    GPU/Ascend; ``cpu_aot`` elsewhere than CPU, or without a working compiler, is an error."""
    return resolve_kernel("prelu_kernel", requested, device_target, _forward_op, "MindSpore's PReLU")


def prelu_library():
    """The compiled PReLU library this process uses (threads: MindSpore's CPU operator count)."""
    return kernel_library("prelu_cpu.cc", "PReLUSetThreads")


@functools.cache
def _forward_op():
    """The forward custom operator over ``prelu_library()`` (its bprop: the backward one), shared by every
    CpuPReLU."""
    library = prelu_library()
    backward = ops.Custom(
        f"{library}:PReLUBackward",
        out_shape=lambda dy, x, w: (x, w),
        out_dtype=lambda dy, x, w: (x, w),
        func_type="aot",
    )

    def bprop(x, w, out, dout):
        return backward(dout, x, w)

    forward = ops.Custom(
        f"{library}:PReLUForward", out_shape=lambda x, w: x, out_dtype=lambda x, w: x, func_type="aot", bprop=bprop
    )
    return forward


class CpuPReLU(nn.Cell):
    """PReLU through ``src/kernels/prelu_cpu.cc`` (float32, CPU); parameter ``w`` as in ``nn.PReLU``."""

    def __init__(self, channels, w=0.25):
        super().__init__()
        self.w = Parameter(Tensor(np.full((channels,), w, np.float32)), name="w")
        self.forward = _forward_op()

    def construct(self, x):
        return self.forward(x, self.w)
