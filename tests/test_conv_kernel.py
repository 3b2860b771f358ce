"""The oneDNN blocked-layout convolution kernel (src/kernels/conv_onednn.cc via src/network/conv.py) against
nn.Conv2d, in the sphere networks (checkpoints, BatchNorm folding, a training step), and how the config's conv_kernel
is resolved."""

import ctypes

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, nn

from src.model_utils.config import load_config
from src.model_utils.device import configured_cpu_threads
from src.network import build_backbone, resolve_conv_kernel
from src.network.conv import Conv2d, conv2d, conv_library
from src.network.fold_bn import fold_batch_norms
from tests.kernel_helpers import (
    assert_checkpoints_interchange,
    assert_config_key,
    assert_kernel_resolution,
    assert_same_training_step,
    value_and_grads,
)

SIZE = (32, 32)
SPHERE = {"embedding_size": 16, "image_size": SIZE, "width": 0.125}  # 8/16/32/64 channels


def twins(in_channels, out_channels, kernel, stride, padding, has_bias=False, seed=0):
    """(nn.Conv2d, Conv2d) with the same random weight (and bias)."""
    native, custom = (
        conv2d(kernel_name, in_channels, out_channels, kernel, stride, padding, has_bias=has_bias)
        for kernel_name in ("native", "cpu_aot")
    )
    assert isinstance(custom, Conv2d) and custom.weight.shape == native.weight.shape
    rng = np.random.RandomState(seed)
    for param in native.trainable_params():
        value = ms.Tensor(rng.randn(*param.shape).astype(np.float32))
        param.set_data(value)
        getattr(custom, param.name.rsplit(".", 1)[-1]).set_data(value)
    return native, custom


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
    library = ctypes.CDLL(conv_library())
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


def kernel_cells(net):
    return [name for name, cell in net.cells_and_names() if isinstance(cell, Conv2d)]


@pytest.mark.parametrize(
    "name, kwargs, count",
    [
        ("sphere10", {"width": 0.125}, 10),  # 4 stride-2 convolutions + 3 units x 2
        ("iresnet18", {}, 21),  # conv1, 8 blocks x 2, 4 downsampling 1x1
        ("mobilefacenet", {}, 33),  # conv1, 15 bottlenecks x 2 (1x1), conv2, linear1
    ],
)
def test_checkpoints_are_interchangeable(tmp_path, name, kwargs, count):
    native = build_backbone(name, conv_kernel="native", embedding_size=16, image_size=SIZE, **kwargs)
    custom = build_backbone(name, conv_kernel="cpu_aot", embedding_size=16, image_size=SIZE, **kwargs)
    assert len(kernel_cells(custom)) == count and not kernel_cells(native)
    assert_checkpoints_interchange(native, custom, tmp_path, SIZE, rtol=1e-4)


def test_batch_norm_folds_into_the_kernel_cell():
    rng = np.random.RandomState(5)

    def layers():
        net = nn.SequentialCell([conv2d("cpu_aot", 4, 6, 3, 1, 1, weight_init="normal"), nn.BatchNorm2d(6)])
        net[1].moving_mean.set_data(ms.Tensor(np.linspace(-0.3, 0.3, 6, dtype=np.float32)))
        net[1].moving_variance.set_data(ms.Tensor(np.linspace(0.5, 1.5, 6, dtype=np.float32)))
        net[1].gamma.set_data(ms.Tensor(np.linspace(0.8, 1.2, 6, dtype=np.float32)))
        return net

    reference = layers()
    reference.set_train(False)
    x = ms.Tensor(rng.uniform(-1, 1, (2, 4, 7, 6)).astype(np.float32))
    expected = reference(x).asnumpy()
    folded = layers()
    ms.load_param_into_net(folded, {p.name: Parameter(p.data.copy(), name=p.name) for p in reference.get_parameters()})
    assert fold_batch_norms(folded) == 1
    folded.set_train(False)
    assert isinstance(folded[0], Conv2d) and folded[0].bias is not None and isinstance(folded[1], nn.Identity)
    np.testing.assert_allclose(folded(x).asnumpy(), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("name, kwargs", [("sphere10", {"width": 0.125}), ("mobilefacenet", {})])
def test_training_step_matches_native(name, kwargs):
    assert_same_training_step(name, SIZE, "conv_kernel", prelu_kernel="native", **kwargs)


def test_export_builds_native_convolutions(tmp_path):
    """export.py writes nn.Conv2d whatever conv_kernel says (a MINDIR cannot hold the AOT operator)."""
    from src.deploy.export_model import load_backbone

    path = str(tmp_path / "sphere4.ckpt")
    ms.save_checkpoint(build_backbone("sphere4", conv_kernel="cpu_aot", **SPHERE), path)
    cfg = load_config(
        ["--backbone=sphere4", "--embedding_size=16", "--image_size=[32,32]", "--backbone_width=0.125"]
        + [f"--ckpt_file={path}", "--conv_kernel=cpu_aot"]
    )
    backbone, _ = load_backbone(cfg)
    assert not kernel_cells(backbone)
    assert len([cell for _, cell in backbone.cells_and_names() if isinstance(cell, nn.Conv2d)]) == 4


def test_config_key_is_validated_and_resolved():
    assert_config_key(
        "conv_kernel",
        ["--backbone=sphere10", "--embedding_size=16", "--image_size=[32,32]", "--backbone_width=0.125"],
        kernel_cells,
        10,
    )


def test_resolve_conv_kernel(monkeypatch, caplog):
    assert_kernel_resolution(
        resolve_conv_kernel, "conv_kernel", "src.network.conv.conv_library", "nn.Conv2d", monkeypatch, caplog
    )


def test_unknown_kernel_is_refused():
    with pytest.raises(ValueError, match="conv_kernel must be one of native, cpu_aot, got 'fast'"):
        build_backbone("sphere4", conv_kernel="fast", **SPHERE)
