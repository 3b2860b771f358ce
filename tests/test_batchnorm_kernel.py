"""The training-mode BatchNorm2d kernel (src/kernels/batchnorm_cpu.cc via src/network/batchnorm.py) against
nn.BatchNorm2d: output, gradients and moving statistics in training, inference, in the backbones (checkpoints,
BatchNorm folding, export, a training step), and how the config's batchnorm_kernel is resolved."""

import ctypes

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, nn

from src.model_utils.config import load_config
from src.model_utils.device import configured_cpu_threads
from src.network import build_backbone, resolve_batchnorm_kernel
from src.network.batchnorm import CpuBatchNorm2d, batchnorm_library
from src.network.fold_bn import fold_batch_norms
from src.network.layers import batch_norm
from tests.kernel_helpers import (
    assert_checkpoints_interchange,
    assert_config_key,
    assert_kernel_resolution,
    assert_same_training_step,
    randomise_batch_norms,
)

SIZE = (32, 32)


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
    statistics, in training mode."""
    native, custom = batch_norm(channels, "native"), batch_norm(channels, "cpu_aot")
    assert isinstance(custom, CpuBatchNorm2d)
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
    library = ctypes.CDLL(batchnorm_library())
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


def randomised(name, batchnorm_kernel, seed=0):
    """Backbone ``name`` (32x32, 16-d) whose BatchNorms have non-trivial statistics and affine parameters."""
    net = build_backbone(name, batchnorm_kernel=batchnorm_kernel, embedding_size=16, image_size=SIZE)
    return randomise_batch_norms(net, seed)


def kernel_cells(net):
    return [name for name, cell in net.cells_and_names() if isinstance(cell, CpuBatchNorm2d)]


@pytest.mark.parametrize(
    "name, count",
    [
        ("mobilefacenet", 50),  # conv1, dw_conv1, 15 bottlenecks x 3, conv2, linear7, linear1
        ("iresnet18", 30),  # bn1, 8 blocks x 3, 4 downsampling, bn2 (features: BatchNorm1d, native)
    ],
)
def test_checkpoints_are_interchangeable(tmp_path, name, count):
    native, custom = randomised(name, "native"), randomised(name, "cpu_aot", seed=1)
    assert len(kernel_cells(custom)) == count and not kernel_cells(native)
    assert_checkpoints_interchange(native, custom, tmp_path, SIZE, rtol=1e-5)
    (tmp_path / "back").mkdir()
    assert_checkpoints_interchange(randomised(name, "cpu_aot", seed=2), native, tmp_path / "back", SIZE, rtol=1e-5)


def test_batch_norms_fold():
    reference = randomised("mobilefacenet", "cpu_aot")
    reference.set_train(False)
    x = ms.Tensor(np.random.RandomState(5).uniform(-1, 1, (2, 3) + SIZE).astype(np.float32))
    expected = reference(x).asnumpy()
    folded = build_backbone("mobilefacenet", batchnorm_kernel="cpu_aot", embedding_size=16, image_size=SIZE)
    ms.load_param_into_net(folded, {p.name: Parameter(p.data.copy(), name=p.name) for p in reference.get_parameters()})
    assert fold_batch_norms(folded) == 50
    assert not kernel_cells(folded)
    folded.set_train(False)
    np.testing.assert_allclose(folded(x).asnumpy(), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("name", ["mobilefacenet", "iresnet18"])
def test_training_step_matches_native(name):
    assert_same_training_step(name, SIZE, "batchnorm_kernel")


def test_export_builds_native_batch_norms(tmp_path):
    """export.py writes nn.BatchNorm2d whatever batchnorm_kernel says (a MINDIR cannot hold the AOT operator)."""
    from src.deploy.export_model import load_backbone

    path = str(tmp_path / "mobilefacenet.ckpt")
    ms.save_checkpoint(randomised("mobilefacenet", "cpu_aot"), path)
    cfg = load_config(
        ["--backbone=mobilefacenet", "--embedding_size=16", "--image_size=[32,32]"]
        + [f"--ckpt_file={path}", "--batchnorm_kernel=cpu_aot"]
    )
    backbone, _ = load_backbone(cfg)
    assert not kernel_cells(backbone)
    assert len([cell for _, cell in backbone.cells_and_names() if isinstance(cell, nn.BatchNorm2d)]) == 50


def test_config_key_is_validated_and_resolved():
    assert_config_key(
        "batchnorm_kernel", ["--backbone=iresnet18", "--embedding_size=16", "--image_size=[32,32]"], kernel_cells, 30
    )


def test_resolve_batchnorm_kernel(monkeypatch, caplog):
    assert_kernel_resolution(
        resolve_batchnorm_kernel,
        "batchnorm_kernel",
        "src.network.batchnorm.batchnorm_library",
        "nn.BatchNorm2d",
        monkeypatch,
        caplog,
    )


def test_unknown_kernel_is_refused():
    with pytest.raises(ValueError, match="batchnorm_kernel must be one of native, cpu_aot, got 'fast'"):
        build_backbone("iresnet18", batchnorm_kernel="fast", embedding_size=16, image_size=SIZE)
