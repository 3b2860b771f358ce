"""The CPU kernels as one accelerator (src/kernels/accelerate.py): applied to the built backbones they take over
every layer's Parameters, compute what MindSpore's layers compute (inference, a training step, after BatchNorm
folding), and ``cpu_kernels`` decides where they run; export never uses them."""

import logging
import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from src.kernels import accelerate
from src.kernels.accelerate import accelerate as accelerate_network
from src.kernels.accelerate import apply_cpu_kernels, kernels_enabled
from src.kernels.batchnorm import CpuBatchNorm2d
from src.kernels.build import KernelBuildError
from src.kernels.conv import KernelConv2d
from src.kernels.prelu import CpuPReLU
from src.model_utils.config import ConfigError, load_config
from src.network import build_backbone
from src.network.fold_bn import fold_batch_norms
from tests.kernel_helpers import assert_same_training_step, randomise_batch_norms, require_kernels

SIZE = (32, 32)
BACKBONES = [
    # name, arguments, (convolutions, BatchNorm2d, PReLU) the kernels take over
    ("sphere10", {"width": 0.125}, (10, 0, 10)),
    ("iresnet18", {}, (21, 30, 9)),
    ("mobilefacenet", {}, (50, 50, 33)),
]


@pytest.fixture
def kernels():
    require_kernels()


def kernel_cells(net):
    """(convolution, BatchNorm, PReLU) kernel cells of ``net``."""
    cells = [cell for _, cell in net.cells_and_names()]
    return tuple(sum(isinstance(c, kind) for c in cells) for kind in (KernelConv2d, CpuBatchNorm2d, CpuPReLU))


def native_layers(net):
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.PReLU)
    return sum(isinstance(cell, kinds) for _, cell in net.cells_and_names())


@pytest.mark.parametrize("name, arguments, counts", BACKBONES)
def test_every_layer_is_taken_over_with_its_parameters(kernels, name, arguments, counts):
    net = build_backbone(name, embedding_size=16, image_size=SIZE, **arguments)
    before = {param.name: param for param in net.get_parameters()}
    result = apply_cpu_kernels(net)
    assert result == {"replaced": sum(counts), "convolutions_left": 0}
    assert kernel_cells(net) == counts and native_layers(net) == 0
    after = {param.name: param for param in net.get_parameters()}
    assert after.keys() == before.keys() and all(after[key] is before[key] for key in before)


@pytest.mark.parametrize("name, arguments, counts", BACKBONES)
def test_checkpoints_and_embeddings_are_shared(kernels, tmp_path, name, arguments, counts):
    """A checkpoint of the native network loads strictly into the accelerated one, and after BatchNorm folding
    (as evaluation does: fold, then the kernels) both give the same embeddings."""
    native = randomise_batch_norms(build_backbone(name, embedding_size=16, image_size=SIZE, **arguments))
    path = str(tmp_path / "native.ckpt")
    ms.save_checkpoint(native, path)
    custom = build_backbone(name, embedding_size=16, image_size=SIZE, **arguments)
    ms.load_param_into_net(custom, ms.load_checkpoint(path), strict_load=True)
    fold_batch_norms(custom)
    apply_cpu_kernels(custom)
    for net in (native, custom):
        net.set_train(False)
    x = ms.Tensor(np.random.RandomState(4).uniform(-1, 1, (2, 3) + SIZE).astype(np.float32))
    expected = native(x).asnumpy()
    np.testing.assert_allclose(custom(x).asnumpy(), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_training_step_matches_native(kernels):
    """A training step of sphere10 through the kernels equals MindSpore's own; the depthwise convolutions and the
    BatchNorms of MobileFaceNet and iResNet are compared layer by layer, forward and backward, in
    tests/test_{depthwise,batchnorm}_kernel.py, and inside each backbone by
    test_checkpoints_and_embeddings_are_shared."""
    assert_same_training_step("sphere10", SIZE, width=0.125)


def test_a_convolution_without_kernel_is_left_and_counted(kernels, caplog):
    net = nn.SequentialCell([nn.Conv2d(4, 4, 3, pad_mode="pad", padding=1, dilation=2), nn.PReLU(4)])
    with caplog.at_level(logging.WARNING, logger="facerec.kernels"):
        accelerate_network(net, "auto", "CPU")
    assert isinstance(net[0], nn.Conv2d) and isinstance(net[1], CpuPReLU)
    assert "1 convolutions have no kernel" in caplog.text


def test_where_the_kernels_run(kernels, monkeypatch):
    monkeypatch.setattr(accelerate, "_decisions", {})
    assert kernels_enabled("auto", "CPU") is True
    for device in ("GPU", "Ascend"):
        assert kernels_enabled("auto", device) is False
    assert kernels_enabled("off", "CPU") is False
    with pytest.raises(ValueError, match="cpu_kernels must be one of auto, off, got 'on'"):
        kernels_enabled("on", "CPU")
    net = build_backbone("sphere4", embedding_size=16, image_size=SIZE, width=0.125)
    accelerate_network(net, "auto", "GPU")
    assert kernel_cells(net) == (0, 0, 0)


def test_a_failed_build_is_logged_once_and_keeps_the_native_layers(monkeypatch, caplog):
    calls = []

    def no_compiler():
        calls.append(1)
        raise KernelBuildError("no C++ compiler 'g++' on PATH")

    monkeypatch.setattr(accelerate, "_decisions", {})
    monkeypatch.setattr(accelerate, "build_all", no_compiler)
    net = build_backbone("sphere4", embedding_size=16, image_size=SIZE, width=0.125)
    with caplog.at_level(logging.WARNING, logger="facerec.kernels"):
        assert accelerate_network(net, "auto", "CPU") is net
        assert kernels_enabled("auto", "CPU") is False
    assert kernel_cells(net) == (0, 0, 0) and len(calls) == 1
    assert caplog.text.count("keeping MindSpore's own layers") == 1 and "no C++ compiler" in caplog.text


def test_config_key(tmp_path):
    assert load_config([]).cpu_kernels == "auto"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("cpu_kernels: off\n", encoding="utf-8")  # YAML 1.1 reads a bare off as false
    assert load_config([f"--config_path={recipe}"]).cpu_kernels == "off"
    with pytest.raises(ConfigError, match="config key 'cpu_kernels': 'fast' is not one of"):
        load_config(["--cpu_kernels=fast"])


def test_export_and_evaluation_layers(kernels, tmp_path):
    """export.py loads MindSpore's own layers whatever cpu_kernels says; evaluation of a checkpoint on the CPU runs
    the kernels (after folding), and not with cpu_kernels off."""
    from src.deploy.export_model import load_backbone
    from src.eval.models import load_network

    path = str(tmp_path / "sphere4.ckpt")
    ms.save_checkpoint(build_backbone("sphere4", embedding_size=16, image_size=SIZE, width=0.125), path)
    args = ["--backbone=sphere4", "--embedding_size=16", "--image_size=[32,32]", "--backbone_width=0.125"]
    cfg = load_config(args + [f"--ckpt_file={path}", "--cpu_kernels=auto"])
    backbone, _ = load_backbone(cfg)
    assert kernel_cells(backbone) == (0, 0, 0) and native_layers(backbone) == 8
    network, _ = load_network(cfg, path)
    assert kernel_cells(network) == (4, 0, 4)
    network, _ = load_network(load_config(args + [f"--ckpt_file={path}", "--cpu_kernels=off"]), path)
    assert kernel_cells(network) == (0, 0, 0)


@pytest.mark.slow
def test_train_py_through_the_kernels(kernels, tmp_path):
    """train.py with cpu_kernels auto trains through the kernels end to end, and reaches the weights the native
    layers reach (4 steps, up to float rounding); its checkpoint loads into the native network."""
    import subprocess

    from tiny_training import PYTHON, ROOT, digits_subset, load_params, max_difference, tiny_args

    data = digits_subset(str(tmp_path / "digits"))
    finals = {}
    for setting in ("auto", "off"):
        output = tmp_path / setting
        args = tiny_args(data, str(output), max_steps=4, save_interval=4, cpu_kernels=setting, list_format="plain")
        subprocess.run([PYTHON, os.path.join(ROOT, "train.py"), *args], check=True, capture_output=True, cwd=ROOT)
        log = (output / "log_rank0.txt").read_text()
        assert ("layers run through the project's CPU kernels" in log) is (setting == "auto"), log
        finals[setting] = load_params(str(output / "checkpoints" / "step_00000004.ckpt"))
    assert max_difference(finals["auto"], finals["off"]) < 1e-3
