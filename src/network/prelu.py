"""PReLU (He et al., "Delving Deep into Rectifiers", ICCV 2015): y = x if x > 0 else a_c x, one slope a_c per
channel c.

Three kernels behind one parameter layout (a cell attribute ``w`` of shape (C,), as ``nn.PReLU``, so checkpoints
are interchangeable):

``native``       ``mindspore.nn.PReLU``, on every device; one PReLU operator in an exported graph (ONNX ``PRelu``).
``cpu_aot``      ``src/kernels/prelu_cpu.cc`` as an AOT custom operator with its own backward. MindSpore 2.10's
                 PReLU/PReLUGrad CPU kernels were the largest single gap to PyTorch in the training profile
                 (benchmarks/profile_train.py). This kernel's forward is branch-free, so it vectorises (2.4 ms
                 against 50 ms for nn.PReLU on a 64x64x56x48 tensor; forward + backward on 32x64x56x48: 18.7 ms
                 against 80 ms), and its slope gradient sums each channel in a fixed order, so it does not change
                 with the thread count. It cannot be saved in an exported file.
``elementwise``  y = max(x, 0) + a_c min(x, 0), built from MindSpore's elementwise operators, so that it can be
                 saved in a MINDIR: about 1.4x faster there than MindSpore's PReLU through MindSpore's CPU
                 operators, and bit for bit the same (one term is always zero). It costs memory: MindSpore keeps
                 the intermediate results (MobileFaceNet's peak RSS at batch 64: 3.1 GiB against 0.6 GiB with
                 either other kernel), and ``cpu_aot`` is faster still wherever it can run.

A backbone takes ``prelu_kernel`` as an argument and builds its PReLUs with ``prelu_class(prelu_kernel)``
(``build_backbone(..., prelu_kernel=...)`` passes it). ``resolve_prelu_kernel`` turns the config's
``prelu_kernel`` (auto or one of the three) into a kernel to run the network or to export it.
"""

import functools

import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from src.network.cpu_kernels import check_kernel, kernel_library, resolve_kernel

KERNELS = ("native", "cpu_aot", "elementwise")


def prelu_class(kernel):
    """The PReLU cell class of ``kernel`` (one of KERNELS); each is built as ``cls(channels, w=0.25)``."""
    check_kernel("prelu_kernel", kernel, KERNELS)
    return {"native": nn.PReLU, "cpu_aot": CpuPReLU, "elementwise": ElementwisePReLU}[kernel]


def resolve_prelu_kernel(requested, device_target, export_format=None):
    """The kernel for ``requested`` (auto or one of KERNELS) on ``device_target``, to run the network (training or
    inference) or, with ``export_format`` (MINDIR, ONNX, AIR), to export it:

    - ``auto`` runs ``cpu_aot`` on the CPU (when its library builds, else ``native`` with a warning) and
      ``native`` on GPU/Ascend; it exports ``elementwise`` in a MINDIR exported on the CPU and ``native``
      otherwise (one fused operator: ONNX ``PRelu``).
    - ``cpu_aot`` elsewhere than the CPU, or without a working compiler, is an error; an export of it writes
      ``native`` (a custom operator's library cannot travel in the file).
    - ``native`` and ``elementwise`` are taken as they are.
    """
    if requested in ("native", "elementwise"):
        return requested
    if export_format is not None and device_target == "CPU":
        return "elementwise" if requested == "auto" and export_format == "MINDIR" else "native"
    if export_format is not None and requested == "auto":
        return "native"
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


class ElementwisePReLU(nn.Cell):
    """PReLU as y = max(x, 0) + a_c min(x, 0) in MindSpore's elementwise operators; parameter ``w`` as in
    ``nn.PReLU``."""

    def __init__(self, channels, w=0.25):
        super().__init__()
        self.w = Parameter(Tensor(np.full((channels,), w, np.float32)), name="w")

    def construct(self, x):
        slope = self.w.reshape((-1,) + (1,) * (x.ndim - 2))
        return ops.maximum(x, 0) + slope * ops.minimum(x, 0)
