"""A few training steps of the digits demo: the loss falls; export -> load -> the same embeddings."""

import logging
import os
import re

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from src.data.digits import prepare_digits
from src.deploy.export_model import export
from src.model_utils.config import load_config
from src.network import build_backbone_from_config
from src.network.weights import load_backbone_weights
from src.train.checkpoint import list_checkpoints
from src.train.loop import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOSS = re.compile(r"step (\d+)/\d+ loss ([0-9.]+)")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return prepare_digits(str(tmp_path_factory.mktemp("digits")), (16, 16))


def demo_config(digits, out_dir, *extra):
    return load_config(
        [
            "--config_path",
            os.path.join(ROOT, "configs", "digits_demo.yaml"),
            f"--train_list={digits['train_list']}",
            f"--train_root={digits['train_root']}",
            f"--output_dir={out_dir}",
            "--image_size=[16,16]",
            "--backbone=sphere4",
            "--embedding_size=16",
            "--log_interval=5",
            "--max_steps=40",
            "--batch_size=32",
            "--cpu_kernels=off",
            *extra,
        ]
    )


@pytest.mark.parametrize("head", ["asoftmax", "arcface"])
def test_demo_loss_falls(digits, tmp_path, caplog, head):
    caplog.set_level(logging.INFO)
    train(demo_config(digits, tmp_path, f"--head.type={head}", "--lr=0.05"))
    losses = [float(m.group(2)) for m in LOSS.finditer(caplog.text)]
    assert len(losses) == 8
    assert np.isfinite(losses).all()
    assert np.mean(losses[-2:]) < 0.95 * np.mean(losses[:2]), losses
    assert list_checkpoints(str(tmp_path / "checkpoints"))


def test_export_reload_gives_same_embeddings(digits, tmp_path):
    train(demo_config(digits, tmp_path, "--max_steps=5"))
    checkpoint = list_checkpoints(str(tmp_path / "checkpoints"))[-1]
    cfg = demo_config(
        digits, tmp_path, f"--ckpt_file={checkpoint}", f"--file_name={tmp_path / 'net'}", "--export_batch_size=4"
    )
    path = export(cfg)
    assert path.endswith(".mindir")
    backbone = load_backbone_weights(build_backbone_from_config(cfg), checkpoint)
    backbone.set_train(False)
    images = ms.Tensor(np.random.default_rng(0).normal(size=(4, 3, 16, 16)).astype(np.float32))
    expected = backbone(images).asnumpy()
    exported = nn.GraphCell(ms.load(path))(images).asnumpy()
    assert expected.shape == (4, 16)
    assert np.abs(exported - expected).max() <= 1e-5


def test_air_export_refused_off_ascend(digits, tmp_path):
    cfg = demo_config(digits, tmp_path, "--file_format=AIR", "--ckpt_file=x.ckpt")
    with pytest.raises(ValueError, match="AIR.*Ascend"):
        export(cfg)
