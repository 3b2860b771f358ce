"""The convolution kernels (src/kernels/conv_onednn.cc and depthwise_cpu.cc via src/kernels/conv.py) against
nn.Conv2d: dense convolutions here, depthwise in test_depthwise_kernel.py."""

import ctypes

import mindspore as ms
import numpy as np
import pytest

from src.kernels.conv import KernelConv2d
from src.kernels.library import kernel_library
from src.model_utils.device import configured_cpu_threads
from src.network.layers import conv2d
from tests.kernel_helpers import require_kernels, value_and_grads


@pytest.fixture(autouse=True)
def kernels():
    require_kernels()


def twins(in_channels, out_channels, kernel, stride, padding, has_bias=False, seed=0):
    """(nn.Conv2d with a random weight (and bias), the kernel cell over the same Parameters)."""
    native = conv2d(in_channels, out_channels, kernel, stride, padding, has_bias=has_bias)
    rng = np.random.RandomState(seed)
    for param in native.trainable_params():
        param.set_data(ms.Tensor(rng.randn(*param.shape).astype(np.float32)))
    return native, KernelConv2d(native)


def assert_matches(native, custom, x):
    expected, got = value_and_grads(native, x), value_and_grads(custom, x)
    assert len(got) == len(expected) == 2 + len(native.trainable_params())
    for name, want, have in zip(("y", "dx", "dw", "db"), expected, got):
        assert have.shape == want.shape, name
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-5 * np.abs(want).max(), err_msg=name)


@pytest.mark.parametrize(
    "shape, out_channels, kernel, stride, padding, has_bias",
    [
        ((2, 5, 9, 8), 7, 3, 1, 1, False),  # the sphere residual convolutions
        ((3, 4, 9, 7), 6, 3, 2, 1, True),  # their stride-2 convolutions (with bias), odd height and width
        ((2, 6, 7, 5), 3, 1, 1, 0, False),  # 1x1
        ((2, 6, 7, 5), 4, 1, 2, 0, True),  # 1x1 stride 2 (iResNet's downsampling)
        ((1, 3, 6, 5), 8, 3, 1, 1, True),  # batch 1, 3 input channels (the first layer)
        ((2, 3, 8, 9), 4, (2, 3), (2, 1), (0, 1), False),  # uneven kernel, stride and padding
    ],
)
def test_matches_conv2d(shape, out_channels, kernel, stride, padding, has_bias):
    native, custom = twins(shape[1], out_channels, kernel, stride, padding, has_bias)
    assert_matches(native, custom, ms.Tensor(np.random.RandomState(1).randn(*shape).astype(np.float32)))


def test_pynative_matches_conv2d():
    native, custom = twins(4, 6, 3, 2, 1, has_bias=True)
    x = ms.Tensor(np.random.RandomState(2).randn(2, 4, 7, 9).astype(np.float32))
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        assert_matches(native, custom, x)
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)


def test_thread_count():
    """Forward and input gradient are the same for 1 and 2 threads; oneDNN's backward-weights splits its
    reduction by thread, so dw may differ, within float rounding."""
    _, cell = twins(32, 32, 3, 1, 1)
    x = ms.Tensor(np.random.RandomState(3).randn(8, 32, 24, 20).astype(np.float32))
    library = ctypes.CDLL(kernel_library("conv_onednn.cc"))
    results = []
    try:
        for threads in (1, 2):
            library.ConvSetThreads(threads)
            results.append(value_and_grads(cell, x))
    finally:
        library.ConvSetThreads(configured_cpu_threads())
    (y1, dx1, dw1), (y2, dx2, dw2) = results
    np.testing.assert_array_equal(y2, y1)
    np.testing.assert_array_equal(dx2, dx1)
    np.testing.assert_allclose(dw2, dw1, rtol=1e-5, atol=1e-6 * np.abs(dw1).max())
