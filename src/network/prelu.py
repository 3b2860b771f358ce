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

import ctypes
import functools
import logging

import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from src.kernels.build import KernelBuildError, compiled_library
from src.model_utils.config import ConfigError
from src.model_utils.device import configured_cpu_threads

KERNELS = ("native", "cpu_aot")
LOG = logging.getLogger("facerec.network")


def prelu_class(kernel):
    """The PReLU cell class of ``kernel`` ("native" or "cpu_aot"); both are built as ``cls(channels, w=0.25)``."""
    if kernel not in KERNELS:
        raise ValueError(f"prelu_kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    return CpuPReLU if kernel == "cpu_aot" else nn.PReLU


def resolve_prelu_kernel(requested, device_target):
    """``auto`` -> ``cpu_aot`` on CPU when its library builds (else ``native``, with a warning), ``native`` on
    GPU/Ascend; ``cpu_aot`` elsewhere than CPU, or without a working compiler, is an error."""
    if requested == "native":
        return "native"
    if requested == "cpu_aot" and device_target != "CPU":
        raise ConfigError(
            f"config key 'prelu_kernel': cpu_aot runs only with device_target CPU, not "
            f"{device_target}; use auto or native"
        )
    if requested == "auto" and device_target != "CPU":
        return "native"
    try:
        _forward_op()
    except KernelBuildError as error:
        if requested == "cpu_aot":
            raise
        LOG.warning("prelu_kernel auto: using MindSpore's PReLU, the CPU kernel did not build: %s", error)
        return "native"
    return "cpu_aot"


@functools.cache
def kernel_library():
    """The compiled library this process uses, set to run on as many threads as MindSpore's CPU operators."""
    library = compiled_library("prelu_cpu.cc")
    ctypes.CDLL(library).PReLUSetThreads(configured_cpu_threads())
    return library


@functools.cache
def _forward_op():
    """The forward custom operator over ``kernel_library()`` (its bprop: the backward one), shared by every
    CpuPReLU."""
    library = kernel_library()
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
