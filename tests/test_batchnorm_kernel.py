"""The training-mode BatchNorm2d kernel (src/kernels/batchnorm_cpu.cc via src/kernels/batchnorm.py) against
nn.BatchNorm2d: output, gradients and moving statistics in training, and inference."""

import ctypes

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from src.kernels.batchnorm import CpuBatchNorm2d
from src.kernels.library import kernel_library
from src.model_utils.device import configured_cpu_threads
from src.network.layers import batch_norm
from tests.kernel_helpers import require_kernels


@pytest.fixture(autouse=True)
def kernels():
    require_kernels()


class WeightedSum(nn.Cell):
    """sum(cell(x) * weights): a loss whose gradient through a BatchNorm is not 0 (that of sum(y^2) is, in exact
    arithmetic, whatever gamma and beta are)."""

    def __init__(self, cell, weights):
        super().__init__()
        self.cell, self.weights = cell, ms.Tensor(weights)

    def construct(self, x):
        return (self.cell(x) * self.weights).sum()


def twins(channels, seed=0):
    """(nn.BatchNorm2d, CpuBatchNorm2d) of the project's settings with the same random gamma, beta and moving
    statistics (Parameters of their own, so that each updates its statistics), in training mode."""
    native, custom = batch_norm(channels), CpuBatchNorm2d(batch_norm(channels))
    rng = np.random.RandomState(seed)
    values = {
        "gamma": rng.uniform(0.5, 1.5, channels),
        "beta": rng.normal(0, 0.5, channels),
        "moving_mean": rng.normal(0, 0.5, channels),
        "moving_variance": rng.uniform(0.5, 1.5, channels),
    }
    for cell in (native, custom):
        for name, value in values.items():
            getattr(cell, name).set_data(ms.Tensor(value.astype(np.float32)))
        cell.set_train(True)
    return native, custom


def training_steps(cell, inputs, weights):
    """For each input in turn, a training forward + backward of sum(cell(x) * weights): [(y, dx, dgamma, dbeta)],
    then the moving statistics after the last."""
    grad = ms.value_and_grad(WeightedSum(cell, weights), 0, cell.trainable_params())
    results = []
    for x in inputs:
        _, (dx, (dgamma, dbeta)) = grad(x)
        results.append((dx.asnumpy(), dgamma.asnumpy(), dbeta.asnumpy()))
    y = cell(inputs[-1]).asnumpy()  # one more training forward: one more moving-statistics update
    return results, y, cell.moving_mean.asnumpy(), cell.moving_variance.asnumpy()


def assert_matches(shape, seed=1):
    native, custom = twins(shape[1])
    rng = np.random.RandomState(seed)
    # Offsets and scales far from 0 and 1: the statistics must not lose precision to them.
    inputs = [ms.Tensor((rng.randn(*shape) * 3 + 5 + i).astype(np.float32)) for i in range(3)]
    weights = rng.randn(*shape).astype(np.float32)
    expected, got = training_steps(native, inputs, weights), training_steps(custom, inputs, weights)
    for want_grads, have_grads in zip(expected[0], got[0]):
        for name, want, have in zip(("dx", "dgamma", "dbeta"), want_grads, have_grads):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=2e-6 * np.abs(want).max(), err_msg=name)
    for name, want, have in zip(("y", "moving_mean", "moving_variance"), expected[1:], got[1:]):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6 * np.abs(want).max(), err_msg=name)
    for name in ("moving_mean", "moving_variance"):
        getattr(custom, name).set_data(getattr(native, name).data.copy())
    for cell in (native, custom):
        cell.set_train(False)
    np.testing.assert_array_equal(custom(inputs[0]).asnumpy(), native(inputs[0]).asnumpy())  # the same operator


@pytest.mark.parametrize(
    "shape",
    [
        (2, 5, 9, 8),
        (1, 4, 6, 5),  # batch 1
        (3, 7, 5, 3),  # odd sizes
        (2, 3, 40, 37),  # planes of more than the kernel's 1024-value blocks
        (5, 6, 1, 1),  # 1x1 maps (MobileFaceNet's linear7 and linear1)
    ],
)
def test_matches_batchnorm2d(shape):
    assert_matches(shape)


def test_pynative_matches_batchnorm2d():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        assert_matches((3, 4, 7, 6))
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)


def test_statistics_of_a_large_offset_channel():
    """Mean and variance from 100k values around 1000 with standard deviation 0.01: a float sum would lose the
    variance; the kernel's (two-pass, double over float blocks) matches float64 numpy."""
    _, cell = twins(2)
    rng = np.random.RandomState(7)
    x = (1000 + 0.01 * rng.randn(25, 2, 64, 64)).astype(np.float32)
    y = cell(ms.Tensor(x)).asnumpy().astype(np.float64)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2, 3), keepdims=True), x64.var(axis=(0, 2, 3), keepdims=True)
    gamma, beta = (getattr(cell, n).asnumpy().reshape(1, -1, 1, 1) for n in ("gamma", "beta"))
    expected = (x64 - mean) / np.sqrt(var + 1e-5) * gamma + beta
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-4)


def test_single_value_channels_keep_a_finite_moving_variance():
    """M = 1 value per channel (batch 1, 1x1 maps): the batch variance is 0 and stays 0 in the moving variance's
    update (nn.BatchNorm2d's M / (M - 1) makes it NaN); the output is beta, as nn.BatchNorm2d's."""
    native, custom = twins(3)
    x = ms.Tensor(np.random.RandomState(8).randn(1, 3, 1, 1).astype(np.float32))
    before = custom.moving_variance.asnumpy().copy()
    np.testing.assert_allclose(custom(x).asnumpy(), native(x).asnumpy(), atol=1e-6)
    np.testing.assert_allclose(custom.moving_mean.asnumpy(), native.moving_mean.asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(custom.moving_variance.asnumpy(), 0.9 * before, rtol=1e-6)
    assert np.isnan(native.moving_variance.asnumpy()).all()


def test_thread_count():
    """Every output and gradient is the same for 1 and 2 threads (each channel summed by one thread)."""
    shape = (8, 16, 24, 20)  # above kernel_threads.h's one-thread size
    rng = np.random.RandomState(3)
    x = ms.Tensor(rng.randn(*shape).astype(np.float32))
    weights = rng.randn(*shape).astype(np.float32)
    library = ctypes.CDLL(kernel_library("batchnorm_cpu.cc"))
    results = []
    try:
        for threads in (1, 2):
            library.BatchNormSetThreads(threads)
            _, cell = twins(16)
            grads, *rest = training_steps(cell, [x], weights)
            results.append(list(grads[0]) + rest)
    finally:
        library.BatchNormSetThreads(configured_cpu_threads())
    for want, have in zip(*results):
        np.testing.assert_array_equal(have, want)
