"""BatchNorm2d (Ioffe and Szegedy, "Batch Normalization", ICML 2015) through ``batchnorm_cpu.cc`` in training, as a
stand-in for ``nn.BatchNorm2d`` that takes over its Parameters (``gamma``, ``beta``, ``moving_mean``,
``moving_variance``).

In training the kernel computes the batch statistics two-pass, accumulated in double, per channel in a fixed order
(the result does not change with the thread count), normalises, and has its own backward; the moving statistics
are updated as nn.BatchNorm2d updates them (the batch variance made unbiased, M / (M - 1) over the M = N*H*W values
of a channel). In inference (``set_train(False)``) it runs MindSpore's own inference BatchNorm on the moving
statistics, as nn.BatchNorm2d does. MindSpore 2.10's CPU BatchNorm and BatchNormGrad are several times the kernel's
cost on the MobileFaceNet shapes (benchmarks/bench_ops.py, batchnorm case).
"""

import functools

import numpy as np
from mindspore import Tensor, nn, ops

from src.kernels.library import kernel_library


@functools.cache
def _training_op():
    """The training forward custom operator ((x, gamma, beta, moving_mean, moving_variance, (eps, momentum)) -> (y,
    the batch statistics saved for the backward (3, C), new moving_mean, new moving_variance)), its bprop the
    backward one ((dy, x, gamma, saved) -> (dx, dgamma, dbeta)); shared by every CpuBatchNorm2d."""
    library = kernel_library("batchnorm_cpu.cc")
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
    """``layer`` (an ``nn.BatchNorm2d``) through the C++ kernel in training (float32 NCHW, CPU), MindSpore's
    inference BatchNorm otherwise, with ``layer``'s Parameters, ``eps`` and momentum."""

    def __init__(self, layer):
        super().__init__()
        self.gamma, self.beta = layer.gamma, layer.beta
        self.moving_mean, self.moving_variance = layer.moving_mean, layer.moving_variance
        self.eps = layer.eps
        # nn.BatchNorm2d keeps 1 - momentum (the weight of the batch statistics); the kernel takes the weight of the
        # old moving statistics, MindSpore's constructor convention.
        self.hyper = Tensor(np.array([layer.eps, 1.0 - layer.momentum], np.float32))
        self.train_op = _training_op()
        self.infer_op = ops.BatchNorm(is_training=False, epsilon=layer.eps)

    def construct(self, x):
        if self.training:
            out = self.train_op(x, self.gamma, self.beta, self.moving_mean, self.moving_variance, self.hyper)
            ops.assign(self.moving_mean, out[2])
            ops.assign(self.moving_variance, out[3])
            return out[0]
        return self.infer_op(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0]
