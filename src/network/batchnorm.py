"""BatchNorm2d (Ioffe and Szegedy, "Batch Normalization", ICML 2015) over NCHW feature maps.

Two kernels behind one parameter layout (``moving_mean``, ``moving_variance``, ``gamma``, ``beta``, each (C,), as
``nn.BatchNorm2d``'s, so checkpoints are interchangeable):

``native``   ``nn.BatchNorm2d``, on every device; what ``export.py`` always uses.
``cpu_aot``  ``CpuBatchNorm2d``: in training, ``src/kernels/batchnorm_cpu.cc`` as an AOT custom operator with its
             own backward (batch statistics two-pass, accumulated in double, per channel in a fixed order: the
             result does not change with the thread count); the moving statistics are updated as nn.BatchNorm2d
             updates them (momentum 0.9 on the old value; the batch variance made unbiased, M / (M - 1) over the
             M = N*H*W values of a channel). In inference (``set_train(False)``) it runs MindSpore's own
             inference BatchNorm on the moving statistics, as nn.BatchNorm2d does. MindSpore 2.10's CPU
             BatchNorm and BatchNormGrad took 150 + 242 ms of a MobileFaceNet training step at batch 32 where
             PyTorch's took 87 + 67 ms (benchmarks/profile_train.py, oneDNN uncapped); the kernel's forward +
             backward take about 50 ms there, and on 32x64x56x48 7.3 ms against 18.7 for nn.BatchNorm2d and
             11.5 for PyTorch (benchmarks/bench_ops.py, batchnorm case).

A backbone's BatchNorm2d layers are built with ``src.network.layers.batch_norm(channels, kernel)``;
``resolve_batchnorm_kernel`` turns the config's ``batchnorm_kernel`` (auto/native/cpu_aot) into one of the two.
src/network/fold_bn.py folds either into the layer before it. The embedding's BatchNorm1d stays nn.BatchNorm1d.
"""

import functools

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer

from src.network.cpu_kernels import check_kernel, kernel_library, resolve_kernel


def batch_norm_class(kernel):
    """The BatchNorm2d cell class of ``kernel`` ("native": nn.BatchNorm2d, "cpu_aot": CpuBatchNorm2d); both take
    nn.BatchNorm2d's constructor arguments."""
    return CpuBatchNorm2d if check_kernel("batchnorm_kernel", kernel) == "cpu_aot" else nn.BatchNorm2d


def resolve_batchnorm_kernel(requested, device_target):
    """``auto`` -> ``cpu_aot`` on CPU when its library builds (else ``native``, with a warning), ``native`` on
    GPU/Ascend; ``cpu_aot`` elsewhere than CPU, or without a working compiler, is an error."""
    return resolve_kernel("batchnorm_kernel", requested, device_target, batchnorm_library, "nn.BatchNorm2d")


def batchnorm_library():
    """The compiled BatchNorm library this process uses (threads: MindSpore's CPU operator count)."""
    return kernel_library("batchnorm_cpu.cc", "BatchNormSetThreads")


@functools.cache
def _training_op():
    """The training forward custom operator over ``batchnorm_library()`` ((x, gamma, beta, moving_mean,
    moving_variance, (eps, momentum)) -> (y, the batch statistics saved for the backward (3, C), new moving_mean,
    new moving_variance)), its bprop the backward one ((dy, x, gamma, saved) -> (dx, dgamma, dbeta)); shared by
    every CpuBatchNorm2d."""
    library = batchnorm_library()
    backward = ops.Custom(
        f"{library}:BatchNormBackward",
        out_shape=lambda dy, x, gamma, saved: (x, gamma, gamma),
        out_dtype=lambda dy, x, gamma, saved: (x, gamma, gamma),
        func_type="aot",
    )

    def bprop(x, gamma, beta, moving_mean, moving_variance, hyper, out, dout):
        dx, dgamma, dbeta = backward(dout[0], x, gamma, out[1])
        return dx, dgamma, dbeta, ops.zeros_like(moving_mean), ops.zeros_like(moving_variance), ops.zeros_like(hyper)

    return ops.Custom(
        f"{library}:BatchNormForward",
        out_shape=lambda x, gamma, beta, moving_mean, moving_variance, hyper: (x, [3] + list(gamma), gamma, gamma),
        out_dtype=lambda x, gamma, beta, moving_mean, moving_variance, hyper: (x, gamma, gamma, gamma),
        func_type="aot",
        bprop=bprop,
    )


class CpuBatchNorm2d(nn.Cell):
    """BatchNorm2d through ``src/kernels/batchnorm_cpu.cc`` in training (float32 NCHW, CPU), MindSpore's inference
    BatchNorm otherwise; nn.BatchNorm2d's parameters, attributes ``num_features``, ``eps``, ``momentum``
    (MindSpore's convention: the weight of the old moving statistics) and constructor arguments."""

    def __init__(
        self,
        num_features,
        eps=1e-5,
        momentum=0.9,
        gamma_init="ones",
        beta_init="zeros",
        moving_mean_init="zeros",
        moving_var_init="ones",
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.moving_mean = Parameter(
            initializer(moving_mean_init, num_features, ms.float32), name="mean", requires_grad=False
        )
        self.moving_variance = Parameter(
            initializer(moving_var_init, num_features, ms.float32), name="variance", requires_grad=False
        )
        self.gamma = Parameter(initializer(gamma_init, num_features, ms.float32), name="gamma")
        self.beta = Parameter(initializer(beta_init, num_features, ms.float32), name="beta")
        self.hyper = Tensor(np.array([eps, momentum], np.float32))
        self.train_op = _training_op()
        self.infer_op = ops.BatchNorm(is_training=False, epsilon=eps)

    def construct(self, x):
        if self.training:
            out = self.train_op(x, self.gamma, self.beta, self.moving_mean, self.moving_variance, self.hyper)
            ops.assign(self.moving_mean, out[2])
            ops.assign(self.moving_variance, out[3])
            return out[0]
        return self.infer_op(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0]
