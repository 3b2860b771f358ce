"""PReLU (He et al., "Delving Deep into Rectifiers", ICCV 2015): y = x if x > 0 else a_c x, one slope a_c per
channel c.

Three kernels behind one parameter layout (a cell attribute ``w`` of shape (C,), as ``nn.PReLU``, so checkpoints
are interchangeable):

``native``       ``mindspore.nn.PReLU``, on every device; one PReLU operator in an exported graph (ONNX ``PRelu``).
``cpu_aot``      ``src/kernels/prelu_cpu.cc`` as an AOT custom operator with its own backward. MindSpore 2.10's
                 PReLU/PReLUGrad CPU kernels were the largest single gap to PyTorch in the training profile
                 (benchmarks/profile_train.py); this kernel about halves their time (benchmarks/bench_ops.py; the
                 figures are in the README, "Performance"), and its slope gradient sums each channel in a fixed
                 order, so it does not change with the thread count. It cannot be saved in an exported file.
``elementwise``  y = max(x, 0) + a_c min(x, 0), built from MindSpore's elementwise operators: the fastest forward on
                 the CPU (about 2.5x MindSpore's PReLU and 1.3x ``cpu_aot`` on a 64x64x56x48 tensor; MobileFaceNet
                 inference +39 %), so inference and the exported MINDIR use it there. One term is always zero, so
                 it equals PReLU bit for bit. Slower than ``cpu_aot`` for training (its backward is four ops).

A backbone takes ``prelu_kernel`` as an argument and builds its PReLUs with ``prelu_class(prelu_kernel)``
(``build_backbone(..., prelu_kernel=...)`` passes it). ``resolve_prelu_kernel`` turns the config's
``prelu_kernel`` (auto or one of the three) into a kernel for a purpose: training, inference or export.
"""

import functools

import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from src.network.cpu_kernels import check_kernel, kernel_library, resolve_kernel

KERNELS = ("native", "cpu_aot", "elementwise")
PURPOSES = ("train", "infer", "export")


def prelu_class(kernel):
    """The PReLU cell class of ``kernel`` (one of KERNELS); each is built as ``cls(channels, w=0.25)``."""
    check_kernel("prelu_kernel", kernel, KERNELS)
    return {"native": nn.PReLU, "cpu_aot": CpuPReLU, "elementwise": ElementwisePReLU}[kernel]


def resolve_prelu_kernel(requested, device_target, purpose="train", file_format="MINDIR"):
    """The kernel for ``requested`` (auto or one of KERNELS) on ``device_target`` for ``purpose``:

    - ``auto``: on the CPU ``cpu_aot`` for training (when its library builds, else ``native`` with a warning) and
      ``elementwise`` for inference and for a MINDIR export; ``native`` on GPU/Ascend and for AIR/ONNX exports
      (one fused operator there: ONNX ``PRelu``).
    - ``cpu_aot`` elsewhere than the CPU, or without a working compiler, is an error; an export of it writes
      ``native`` (a custom operator's library cannot travel in the file).
    - ``native`` and ``elementwise`` are taken as they are.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    if requested in ("native", "elementwise"):
        return requested
    on_cpu = device_target == "CPU"
    if purpose == "export" and on_cpu:
        return "elementwise" if requested == "auto" and file_format == "MINDIR" else "native"
    if requested == "auto" and on_cpu and purpose == "infer":
        return "elementwise"
    if requested == "auto" and purpose == "export":
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
