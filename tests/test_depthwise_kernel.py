"""The depthwise convolution kernel (src/kernels/depthwise_cpu.cc via src/kernels/conv.py) against
nn.Conv2d(group=C)."""

import ctypes

import mindspore as ms
import numpy as np
import pytest

from src.kernels.conv import DEPTHWISE, KernelConv2d, kernel_of
from src.kernels.library import kernel_library
from src.model_utils.device import configured_cpu_threads
from src.network.layers import conv2d
from tests.kernel_helpers import require_kernels, value_and_grads


@pytest.fixture(autouse=True)
def kernels():
    require_kernels()


def twins(channels, kernel, stride, padding, seed=0):
    """(nn.Conv2d(group=C) with a random weight, the kernel cell over the same Parameter)."""
    native = conv2d(channels, channels, kernel, stride, padding, group=channels, has_bias=False)
    assert kernel_of(native) == DEPTHWISE
    native.weight.set_data(ms.Tensor(np.random.RandomState(seed).randn(*native.weight.shape).astype(np.float32)))
    return native, KernelConv2d(native)


@pytest.mark.parametrize(
    "shape, kernel, stride, padding",
    [
        ((2, 5, 9, 8), 3, 1, 1),  # MobileFaceNet's depthwise 3x3
        ((3, 4, 9, 7), 3, 2, 1),  # its stride-2 bottlenecks, odd height and width
        ((2, 6, 7, 6), (7, 6), 1, 0),  # linear7: the kernel is the feature map
        ((1, 3, 6, 5), 3, 1, 1),  # batch 1
        ((2, 1, 5, 4), 3, 2, 1),  # one channel
        ((2, 3, 8, 8), 3, 3, 1),  # stride 3 (the output ignores the last rows)
        ((2, 3, 6, 5), (2, 3), (2, 1), (0, 2)),  # uneven kernel, stride and padding
        ((2, 3, 4, 1), 3, 1, 1),  # one column
        ((2, 2, 9, 7), 5, 1, 2),  # a 5x5 "same" convolution
        ((2, 3, 7, 6), 3, 1, 0),  # stride 1, no padding
    ],
)
def test_matches_grouped_conv2d(shape, kernel, stride, padding):
    native, custom = twins(shape[1], kernel, stride, padding)
    x = ms.Tensor(np.random.RandomState(1).randn(*shape).astype(np.float32))
    expected, got = value_and_grads(native, x), value_and_grads(custom, x)
    for name, want, have in zip(("y", "dx", "dw"), expected, got):
        assert have.shape == want.shape, name
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-5 * np.abs(want).max(), err_msg=name)


def test_pynative_matches_grouped_conv2d():
    native, custom = twins(4, 3, 2, 1)
    x = ms.Tensor(np.random.RandomState(2).randn(2, 4, 7, 9).astype(np.float32))
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        expected, got = value_and_grads(native, x), value_and_grads(custom, x)
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    for name, want, have in zip(("y", "dx", "dw"), expected, got):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-5 * np.abs(want).max(), err_msg=name)


@pytest.mark.parametrize(
    "shape, kernel, stride",
    [((8, 16, 24, 20), 3, 1), ((8, 16, 23, 21), 3, 2), ((32, 64, 7, 6), (7, 6), 1)],  # each large enough for 2 threads
)
def test_weight_gradient_does_not_depend_on_the_thread_count(shape, kernel, stride):
    _, cell = twins(shape[1], kernel, stride, 0 if isinstance(kernel, tuple) else 1)
    x = ms.Tensor(np.random.RandomState(3).randn(*shape).astype(np.float32))
    library = ctypes.CDLL(kernel_library("depthwise_cpu.cc"))
    results = []
    try:
        for threads in (1, 2):
            library.DepthwiseSetThreads(threads)
            results.append(value_and_grads(cell, x))
    finally:
        library.DepthwiseSetThreads(configured_cpu_threads())
    for want, have in zip(*results):
        np.testing.assert_array_equal(have, want)
