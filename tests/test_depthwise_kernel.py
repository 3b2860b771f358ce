"""The CPU depthwise convolution kernel (src/kernels/depthwise_cpu.cc via src/network/depthwise.py) against
nn.Conv2d(group=C), in MobileFaceNet (checkpoints, BatchNorm folding, a training step), and how the config's
depthwise_kernel is resolved."""

import ctypes

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, nn

from src.model_utils.device import configured_cpu_threads
from src.network import build_backbone, resolve_depthwise_kernel
from src.network.depthwise import DepthwiseConv2d, depthwise_conv2d, depthwise_library
from src.network.fold_bn import fold_batch_norms
from tests.kernel_helpers import (
    assert_checkpoints_interchange,
    assert_config_key,
    assert_kernel_resolution,
    assert_same_training_step,
    randomise_batch_norms,
    value_and_grads,
)

SIZE = (32, 32)  # MobileFaceNet: 2x2 before linear7


def twins(channels, kernel, stride, padding, seed=0):
    """(nn.Conv2d(group=C), DepthwiseConv2d) with the same random weight."""
    native = depthwise_conv2d("native", channels, kernel, stride, padding)
    custom = depthwise_conv2d("cpu_aot", channels, kernel, stride, padding)
    assert isinstance(custom, DepthwiseConv2d) and custom.weight.shape == native.weight.shape
    weight = np.random.RandomState(seed).randn(*native.weight.shape).astype(np.float32)
    native.weight.set_data(ms.Tensor(weight))
    custom.weight.set_data(ms.Tensor(weight))
    return native, custom


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
    library = ctypes.CDLL(depthwise_library())
    results = []
    try:
        for threads in (1, 2):
            library.DepthwiseSetThreads(threads)
            results.append(value_and_grads(cell, x))
    finally:
        library.DepthwiseSetThreads(configured_cpu_threads())
    for want, have in zip(*results):
        np.testing.assert_array_equal(have, want)


def mobilefacenet(depthwise_kernel, seed=0):
    """A MobileFaceNet (32x32, 16-d) whose BatchNorms have non-trivial statistics and affine parameters."""
    net = build_backbone("mobilefacenet", depthwise_kernel=depthwise_kernel, embedding_size=16, image_size=SIZE)
    return randomise_batch_norms(net, seed)


def depthwise_cells(net):
    return [name for name, cell in net.cells_and_names() if isinstance(cell, DepthwiseConv2d)]


def test_checkpoints_are_interchangeable(tmp_path):
    native, custom = (
        mobilefacenet("native"),
        build_backbone("mobilefacenet", depthwise_kernel="cpu_aot", embedding_size=16, image_size=SIZE),
    )
    assert len(depthwise_cells(custom)) == 17 and not depthwise_cells(native)  # dw_conv1, 15 bottlenecks, linear7
    assert_checkpoints_interchange(native, custom, tmp_path, SIZE, rtol=1e-5)


def test_batch_norms_fold_into_the_custom_cell():
    reference = mobilefacenet("cpu_aot")
    reference.set_train(False)
    x = ms.Tensor(np.random.RandomState(5).uniform(-1, 1, (2, 3) + SIZE).astype(np.float32))
    expected = reference(x).asnumpy()
    folded = build_backbone("mobilefacenet", depthwise_kernel="cpu_aot", embedding_size=16, image_size=SIZE)
    ms.load_param_into_net(folded, {p.name: Parameter(p.data.copy(), name=p.name) for p in reference.get_parameters()})
    assert fold_batch_norms(folded) > 0
    folded.set_train(False)
    layers = [cell for _, cell in folded.cells_and_names() if isinstance(cell, DepthwiseConv2d)]
    assert len(layers) == 17 and all(layer.bias is not None for layer in layers)
    assert not [name for name, cell in folded.cells_and_names() if isinstance(cell, nn.BatchNorm2d)]
    np.testing.assert_allclose(folded(x).asnumpy(), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    names = [p.name for p in folded.get_parameters()]
    assert "dw_conv1.conv.bias" in names and "blocks.0.conv.3.bias" in names and len(names) == len(set(names))


def test_training_step_matches_native():
    assert_same_training_step("mobilefacenet", SIZE, "depthwise_kernel")


def test_config_key_is_validated_and_resolved():
    assert_config_key(
        "depthwise_kernel",
        ["--backbone=mobilefacenet", "--embedding_size=16", "--image_size=[32,32]"],
        depthwise_cells,
        17,
    )


def test_resolve_depthwise_kernel(monkeypatch, caplog):
    assert_kernel_resolution(
        resolve_depthwise_kernel,
        "depthwise_kernel",
        "src.network.depthwise.depthwise_library",
        "nn.Conv2d(group=C)",
        monkeypatch,
        caplog,
    )


def test_unknown_kernel_is_refused():
    with pytest.raises(ValueError, match="depthwise_kernel must be one of native, cpu_aot, got 'fast'"):
        build_backbone("mobilefacenet", depthwise_kernel="fast", embedding_size=8, image_size=SIZE)
