"""export.py: file names, the sidecar JSON, dynamic batch, and the built-in parity check (--verify) for MINDIR and
ONNX on the tiny sphere4 network of tests/fixtures/lite/.

An ONNX export works once per process (mindspore.onnx.export fails on the second), so ONNX exports run export.py
in a subprocess; MINDIR exports run in this process.
"""

import json
import os
import re
import subprocess
import sys

import mindspore as ms
import numpy as np
import onnx
import pytest
from lite_helpers import FIXTURE_ARGS

from src.deploy import export_model
from src.deploy.export_model import run_export
from src.deploy.parity import MAX_ABS_DIFF, MIN_COSINE, parity, random_inputs
from src.model_utils.config import DEFAULT_CONFIG, load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = FIXTURE_ARGS
VERIFY_LINE = re.compile(r"batch ([\d+]+): max_abs_diff=(\S+) min_cosine=(\S+) (PASS|FAIL)")


def tiny_args(tmp_path, *extra):
    return TINY + ["--file_name", str(tmp_path / "model"), *extra]


def export_main(argv):
    """What ``python export.py ARGV`` runs, without the process: the sphereface_config.yaml defaults apply."""
    return run_export(load_config(argv, default_config=DEFAULT_CONFIG))


def read_sidecar(path):
    with open(path + ".json", encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------- names, sidecar, flags


@pytest.mark.parametrize(
    "extra, name",
    [
        ([], "sphere4_40x32_b1"),
        (["--export_batch_size", "8"], "sphere4_40x32_b8"),
        (["--dynamic_batch"], "sphere4_40x32_dyn"),
        (["--file_name", "out/m"], "out/m"),
    ],
)
def test_default_file_name_says_backbone_size_and_batch(extra, name):
    assert export_model.export_name(load_config(TINY + extra)) == name


def test_bool_key_alone_means_true():
    assert load_config(TINY + ["--verify"]).verify is True
    assert load_config(TINY + ["--verify", "false"]).verify is False
    assert load_config(TINY).verify is False


def test_sidecar_records_the_preprocessing():
    record = export_model.preprocessing_record(load_config(TINY + ["--dynamic_batch", "--file_format", "ONNX"]))
    assert record["input_shape"] == [None, 3, 40, 32]
    assert record["dynamic_batch"] is True
    assert (record["channel_order"], record["mean"], record["scale"]) == ("RGB", 127.5, 1 / 128)
    assert record["embedding_size"] == 16
    assert record["image_size"] == [40, 32]
    # The SphereFace 112x96 template scaled to 40 rows (x 40/112) and centred in 32 columns.
    assert record["alignment_template"][0] == pytest.approx(
        [30.2946 * 40 / 112 + (32 - 96 * 40 / 112) / 2, 51.6963 * 40 / 112], abs=1e-4
    )
    assert (record["input_name"], record["output_name"]) == ("image", "embedding")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--file_format", "AIR"], "AIR can only be exported with device_target Ascend"),
        (["--file_format", "AIR", "--device_target", "Ascend", "--dynamic_batch"], "not AIR"),
        (["--file_format", "AIR", "--device_target", "Ascend", "--verify"], "AIR file cannot be loaded back"),
    ],
)
def test_refused_requests_say_why(extra, message):
    with pytest.raises(ValueError, match=message):
        export_model.check_request(load_config(TINY + extra))


# ---------------------------------------------------------------- the parity measure


def test_parity_measures_against_hand_computed_values():
    reference = np.array([[3.0, 4.0], [1.0, 0.0]])
    same = parity(reference, reference.copy())
    assert same == {"max_abs_diff": 0.0, "min_cosine": pytest.approx(1.0), "passed": True}
    # Row 0 turned into (4, 3): cosine (12 + 12) / 25 = 0.96, largest difference 1.
    turned = parity(reference, np.array([[4.0, 3.0], [1.0, 0.0]]))
    assert turned["max_abs_diff"] == 1.0
    assert turned["min_cosine"] == pytest.approx(0.96)
    assert turned["passed"] is False


def test_parity_thresholds_are_the_acceptance_limits():
    reference = np.ones((2, 4))
    assert parity(reference, reference + 0.9 * MAX_ABS_DIFF)["passed"]
    # A uniform offset keeps the direction (cosine 1) but exceeds the absolute limit.
    assert not parity(reference, reference + 1.1 * MAX_ABS_DIFF)["passed"]
    # Tiny embeddings: a difference under the absolute limit can still turn them; the cosine catches it.
    small = np.array([[1e-4, 0.0]])
    turned = 1e-4 * np.array([[np.cos(0.5), np.sin(0.5)]])
    result = parity(small, turned)
    assert result["max_abs_diff"] < MAX_ABS_DIFF
    assert result["min_cosine"] == pytest.approx(np.cos(0.5)) and not result["passed"]
    with pytest.raises(ValueError, match="output shape"):
        parity(np.ones((2, 4)), np.ones((2, 5)))


def test_parity_off_the_cpu_keeps_the_cosine_bound_only():
    reference = np.array([[3.0, 4.0], [1.0, 2.0]])
    scaled = reference * (1 + 1e-3)  # each value moved by more than 1e-4, every direction kept
    assert not parity(reference, scaled)["passed"]
    assert parity(reference, scaled, on_cpu=False)["passed"]
    turned = np.array([[4.0, 3.0], [1.0, 2.0]])
    assert not parity(reference, turned, on_cpu=False)["passed"]


def test_random_inputs_are_normalised_pixels():
    x = random_inputs(3, (40, 32), seed=5)
    assert x.shape == (3, 3, 40, 32) and x.dtype == np.float32
    pixels = x * 128.0 + 127.5
    assert np.allclose(pixels, np.round(pixels), atol=1e-4)
    assert pixels.min() >= 0 and pixels.max() <= 255
    assert np.array_equal(x, random_inputs(3, (40, 32), seed=5))


# ---------------------------------------------------------------- export + verify


@pytest.mark.parametrize(
    "extra, batches",
    [
        (["--export_batch_size", "4"], "4"),
        (["--dynamic_batch", "--export_batch_size", "3"], "3+4"),
    ],
)
def test_mindir_verify_passes(tmp_path, capsys, extra, batches):
    assert export_main(tiny_args(tmp_path, "--verify", *extra)) == 0
    out = capsys.readouterr().out
    match = VERIFY_LINE.search(out)
    assert match, out
    assert match.group(1) == batches
    assert float(match.group(2)) <= MAX_ABS_DIFF and float(match.group(3)) >= MIN_COSINE
    assert match.group(4) == "PASS"
    path = str(tmp_path / "model.mindir")
    assert out.strip().splitlines()[-1] == path
    record = read_sidecar(path)
    assert record["parity"]["passed"] is True
    assert record["parity"]["max_abs_diff"] == pytest.approx(float(match.group(2)), rel=1e-3, abs=1e-12)


def test_verify_fails_with_exit_status_1(tmp_path, monkeypatch, capsys):
    real = export_model.load_exported

    def slightly_off(path):
        run = real(path)
        return lambda x: run(x) + 2 * MAX_ABS_DIFF

    monkeypatch.setattr(export_model, "load_exported", slightly_off)
    assert export_main(tiny_args(tmp_path, "--verify", "--export_batch_size", "2")) == 1
    assert "FAIL" in capsys.readouterr().out
    assert read_sidecar(str(tmp_path / "model.mindir"))["parity"]["passed"] is False


def test_verify_on_real_images(tmp_path, capsys, shared_dir):
    folder = os.path.join(shared_dir, "models", "mobilefacenet_casia", "reference", "aligned")
    assert export_main(tiny_args(tmp_path, "--verify", "--export_batch_size", "4", "--verify_images", folder)) == 0
    assert f"on 4 images from {folder}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, batch_dim",
    [
        (["--export_batch_size", "4"], 4),
        (["--dynamic_batch", "--export_batch_size", "2"], "batch"),
    ],
)
def test_onnx_verify_passes_in_a_fresh_process(tmp_path, extra, batch_dim):
    command = [
        sys.executable,
        os.path.join(REPO, "export.py"),
        *tiny_args(tmp_path, "--file_format", "ONNX", "--verify", *extra),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    match = VERIFY_LINE.search(result.stdout)
    assert match and match.group(4) == "PASS", result.stdout
    assert float(match.group(2)) <= MAX_ABS_DIFF and float(match.group(3)) >= MIN_COSINE
    path = str(tmp_path / "model.onnx")
    dim = onnx.load(path).graph.input[0].type.tensor_type.shape.dim[0]
    assert (dim.dim_param or dim.dim_value) == batch_dim
    assert read_sidecar(path)["input_name"] == "image"
    assert "PRelu" in {node.op_type for node in onnx.load(path).graph.node}


def test_onnx_of_a_network_ending_in_batchnorm1d_runs_in_onnxruntime(tmp_path):
    """iResNet ends in BatchNorm1d, whose last op MindSpore 2.10 leaves unnamed in ONNX; export.py repairs it."""
    from src.network import build_backbone

    net = build_backbone("iresnet18", embedding_size=16, image_size=(32, 32))
    for param in net.get_parameters():  # untrained Normal(0.1) convolutions give ~1e7 outputs; keep them O(1)
        if "conv" in param.name:
            param.set_data(param.data * 0.2)
    ckpt = str(tmp_path / "iresnet18.ckpt")
    ms.save_checkpoint(net, ckpt)
    command = [
        sys.executable,
        os.path.join(REPO, "export.py"),
        "--device_target",
        "CPU",
        "--backbone",
        "iresnet18",
        "--embedding_size",
        "16",
        "--image_size",
        "[32, 32]",
        "--ckpt_file",
        ckpt,
        "--file_format",
        "ONNX",
        "--dynamic_batch",
        "--export_batch_size",
        "2",
        "--verify",
        "--file_name",
        str(tmp_path / "model"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    match = VERIFY_LINE.search(result.stdout)
    assert match and match.group(4) == "PASS", result.stdout
    model = onnx.load(str(tmp_path / "model.onnx"))
    assert [o.name for o in model.graph.output] == ["embedding"]
    assert "embedding" in {name for node in model.graph.node for name in node.output}


def test_exported_mindir_equals_checkpoint_bit_for_bit(tmp_path):
    """The MINDIR path of eval.py (nn.GraphCell) reproduces the checkpoint's network exactly on CPU, with the
    layers the MINDIR holds (MindSpore's own: the CPU kernels compute in another summation order)."""
    export_main(tiny_args(tmp_path, "--export_batch_size", "2"))
    cfg = load_config(TINY)
    from src.network import build_backbone_from_config
    from src.network.weights import load_backbone_weights

    net = load_backbone_weights(build_backbone_from_config(cfg), cfg.ckpt_file)
    net.set_train(False)
    x = random_inputs(2, (40, 32), seed=9)
    graph = ms.nn.GraphCell(ms.load(str(tmp_path / "model.mindir")))
    assert np.array_equal(graph(ms.Tensor(x)).asnumpy(), net(ms.Tensor(x)).asnumpy())
