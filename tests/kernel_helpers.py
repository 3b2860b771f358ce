"""What the CPU kernel tests share: a layer's output and gradients, and one training step of a backbone, to compare a
kernel with MindSpore's own; the auto/native/cpu_aot resolution of a kernel's config key."""

import logging

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, nn

from src.heads import build_head
from src.kernels.build import KernelBuildError
from src.model_utils.config import ConfigError, load_config
from src.network import build_backbone, build_backbone_from_config
from src.train.optimizer import build_optimizer
from src.train.train_network import FaceTrainNetwork
from src.train.train_step import TrainStep


class SquareSum(nn.Cell):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def construct(self, x):
        y = self.cell(x)
        return (y * y).sum()


def value_and_grads(cell, x):
    """(output, d/dx, d/d(each trainable parameter of the cell)...) of sum(cell(x)^2), as arrays."""
    grad = ms.value_and_grad(SquareSum(cell), 0, cell.trainable_params())
    _, (dx, dparams) = grad(x)
    return (cell(x).asnumpy(), dx.asnumpy(), *(d.asnumpy() for d in dparams))


def train_step(name, image_size, initial=None, **backbone):
    """One SGD-momentum step of backbone ``name`` (16-d, keyword arguments ``backbone``) + a cosface head from
    ``initial`` (parameter arrays; None: the seed-1 initialisation) on 4 images: (loss, parameters before, parameters
    after)."""
    ms.set_seed(1)
    network = FaceTrainNetwork(
        build_backbone(name, embedding_size=16, image_size=image_size, **backbone),
        build_head("cosface", embedding_size=16, num_classes=5),
    )
    if initial is not None:
        ms.load_param_into_net(network, {k: Parameter(ms.Tensor(v), name=k) for k, v in initial.items()})
    before = {p.name: p.asnumpy().copy() for p in network.trainable_params()}
    step = TrainStep(network, build_optimizer(network.trainable_params(), np.full(1, 0.01, np.float32), 0.9, 5e-4))
    step.set_train(True)
    rng = np.random.RandomState(6)
    images = ms.Tensor(rng.uniform(-1, 1, (4, 3) + tuple(image_size)).astype(np.float32))
    loss = float(step(images, ms.Tensor(np.arange(4) % 5, ms.int32))[0].asnumpy())
    return loss, before, {p.name: p.asnumpy().copy() for p in network.trainable_params()}


def assert_same_training_step(name, image_size, kernel_key, **backbone):
    """One training step with ``kernel_key`` native and one with cpu_aot from the same parameters: the same loss
    and the same weight update up to float rounding. Parameters whose update is below 1e-3 of the largest are left
    out: e.g. the betas of BatchNorms that feed another BatchNorm through a 1x1 convolution have a gradient of
    exactly 0 in exact arithmetic (the next BatchNorm removes a per-channel shift), so theirs is rounding noise."""
    native_loss, before, native_after = train_step(name, image_size, **backbone, **{kernel_key: "native"})
    custom_loss, custom_before, custom_after = train_step(
        name, image_size, before, **backbone, **{kernel_key: "cpu_aot"}
    )
    assert custom_before.keys() == before.keys()
    assert all(np.array_equal(custom_before[k], before[k]) for k in before)
    assert custom_loss == pytest.approx(native_loss, rel=1e-5)
    updates = {name: native_after[name] - value for name, value in before.items()}
    largest = max(np.abs(update).max() for update in updates.values())
    compared = 0
    for name, update in updates.items():
        scale = np.abs(update).max()
        if scale >= 1e-3 * largest:
            np.testing.assert_allclose(
                custom_after[name] - before[name], update, rtol=0, atol=1e-3 * scale, err_msg=name
            )
            compared += 1
    assert compared > len(updates) // 2


def assert_kernel_resolution(resolve, key, library, native_name, monkeypatch, caplog):
    """``resolve(requested, device_target)`` of config key ``key``: native stays native, auto is native on GPU/Ascend
    and cpu_aot on the CPU, cpu_aot off the CPU is a ConfigError naming the key; when the kernel's library
    (``library``, the dotted name of the function that builds it) fails to build, auto falls back to
    ``native_name`` with a warning that gives the reason and cpu_aot raises the build error."""
    for device in ("CPU", "GPU", "Ascend"):
        assert resolve("native", device) == "native"
    for device in ("GPU", "Ascend"):
        assert resolve("auto", device) == "native"
        with pytest.raises(ConfigError, match=f"'{key}': cpu_aot runs only with device_target CPU, not {device}"):
            resolve("cpu_aot", device)
    assert resolve("auto", "CPU") == resolve("cpu_aot", "CPU") == "cpu_aot"

    def no_compiler():
        raise KernelBuildError("no C++ compiler 'g++' on PATH")

    monkeypatch.setattr(library, no_compiler)
    with caplog.at_level(logging.WARNING, logger="facerec.network"):
        assert resolve("auto", "CPU") == "native"
    assert f"{key} auto: using {native_name}" in caplog.text and "no C++ compiler" in caplog.text
    with pytest.raises(KernelBuildError):
        resolve("cpu_aot", "CPU")


def assert_checkpoints_interchange(native, custom, tmp_path, image_size, rtol):
    """``native``'s checkpoint loads strictly into ``custom`` (the same backbone with a kernel: same parameter names)
    and both give the same embeddings to ``rtol``."""
    assert [p.name for p in native.get_parameters()] == [p.name for p in custom.get_parameters()]
    path = str(tmp_path / "native.ckpt")
    ms.save_checkpoint(native, path)
    ms.load_param_into_net(custom, ms.load_checkpoint(path), strict_load=True)
    for net in (native, custom):
        net.set_train(False)
    x = ms.Tensor(np.random.RandomState(4).uniform(-1, 1, (2, 3) + tuple(image_size)).astype(np.float32))
    expected = native(x).asnumpy()
    np.testing.assert_allclose(custom(x).asnumpy(), expected, rtol=rtol, atol=1e-5 * np.abs(expected).max())


def assert_config_key(key, backbone_args, cells, count):
    """The config key ``key`` defaults to auto and refuses an unknown value, naming the key; for the backbone of
    ``backbone_args`` (config arguments), auto builds ``count`` kernel cells (``cells(network)`` lists them) on the
    CPU and native none."""
    assert getattr(load_config([]), key) == "auto"
    with pytest.raises(ConfigError, match=f"config key '{key}': 'fast' is not one of"):
        load_config([f"--{key}=fast"])
    cfg = load_config(backbone_args)
    assert len(cells(build_backbone_from_config(cfg))) == count
    assert not cells(build_backbone_from_config(cfg, **{key: "native"}))


def randomise_batch_norms(net, seed=0):
    """Give ``net``'s BatchNorms non-trivial statistics and affine parameters (moving means and betas ~ N(0, 0.2),
    moving variances and gammas ~ U(0.5, 1.5)); returns ``net``."""
    rng = np.random.RandomState(seed)
    for param in net.get_parameters():
        if param.name.endswith(("moving_mean", "beta")):
            param.set_data(ms.Tensor(rng.normal(0, 0.2, param.shape).astype(np.float32)))
        elif param.name.endswith(("moving_variance", "gamma")):
            param.set_data(ms.Tensor(rng.uniform(0.5, 1.5, param.shape).astype(np.float32)))
    return net
