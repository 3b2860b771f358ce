"""Acceptance of the deployment chain on the real MobileFaceNet (../shared/models/mobilefacenet_casia) and real LFW
pairs (a 60-pair View 1 subset): checkpoint -> MINDIR and ONNX (--verify) -> Lite model (tools/to_lite.py), then
scripts/run_infer_310.sh with MindSpore's MINDIR runner and with the C++ harness gives eval.py's accuracy and
embeddings. Needs PyTorch (the converter), MindSpore Lite (the harness) and Python 3.7 (Lite's converter)."""

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from deploy_helpers import LFW, REPO, SHARED, run_script, write_subset

from src.deploy.bin_layout import read_arrays
from src.deploy.export_model import run_export
from src.deploy.pair_record import read_pair_record
from src.eval.embed import embed_images, fuse
from src.eval.pair_images import load_pair_images
from src.eval.pairs import read_pairs
from src.eval.report import accuracy_line
from src.eval.verify import verification_metrics
from src.model_utils.config import DEFAULT_CONFIG, load_config
from src.network import build_backbone_from_config
from src.network.weights import load_backbone_weights

MODEL_DIR = os.path.join(SHARED, "models", "mobilefacenet_casia")
VERIFY_LINE = re.compile(r"max_abs_diff=(\S+) min_cosine=(\S+) PASS")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory, lite_home):
    """(config args, MindSpore MINDIR, Lite MINDIR) of the converted MobileFaceNet, batch 64."""
    if not os.path.isdir(MODEL_DIR):
        pytest.skip(f"the shared model ../shared/models/mobilefacenet_casia ({os.path.abspath(MODEL_DIR)}) is absent")
    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed (optional: pip install torch==2.13.0); the converter needs it")
    from src.deploy import lite_convert as to_lite
    from tools.convert_torch import main as convert_torch

    try:
        to_lite.find_python37()
    except to_lite.ConversionError as err:
        pytest.skip(str(err))
    folder = tmp_path_factory.mktemp("mobilefacenet")
    ckpt = str(folder / "mobilefacenet.ckpt")
    convert_torch(
        ["--backbone", "mobilefacenet", "--torch_ckpt", os.path.join(MODEL_DIR, "068.ckpt"), "--output", ckpt]
    )
    args = [
        "--device_target",
        "CPU",
        "--backbone",
        "mobilefacenet",
        "--embedding_size",
        "128",
        "--image_size",
        "[112, 96]",
        "--ckpt_file",
        ckpt,
        "--export_batch_size",
        "64",
    ]
    aligned = os.path.join(MODEL_DIR, "reference", "aligned")
    assert (
        run_export(
            load_config(
                args + ["--file_name", str(folder / "mfn_b64"), "--verify", "--verify_images", aligned],
                default_config=DEFAULT_CONFIG,
            )
        )
        == 0
    )
    onnx_run = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "export.py"),
            *args,
            "--file_format",
            "ONNX",
            "--file_name",
            str(folder / "mfn_b64"),
            "--verify",
            "--verify_images",
            aligned,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert onnx_run.returncode == 0, onnx_run.stderr[-3000:]
    diff, cosine = VERIFY_LINE.search(onnx_run.stdout).groups()
    assert float(diff) <= 1e-4 and float(cosine) >= 0.99999
    lite = str(folder / "mfn_b64_lite.mindir")
    to_lite.to_lite(str(folder / "mfn_b64.onnx"), lite, lite_home=lite_home)
    assert os.path.isfile(lite + ".json")  # the sidecar follows the model
    return args, str(folder / "mfn_b64.mindir"), lite


def test_run_infer_310_matches_eval_with_both_backends(models, tmp_path, face_infer):
    args, mindir, lite = models
    pairs = write_subset(tmp_path / "pairs.txt", 30)
    cfg = load_config(args)
    pair_set = read_pairs(pairs, os.path.join(LFW, "images_150"))
    net = load_backbone_weights(build_backbone_from_config(cfg), cfg.ckpt_file)
    net.set_train(False)
    landmarks = os.path.join(LFW, "lfw_landmark_150.txt")
    orig, flip = embed_images(net, load_pair_images(pair_set, cfg.image_size, landmarks), 64)
    metrics, _ = verification_metrics(fuse(orig, flip, "concat"), pair_set)
    assert metrics["kfold"]["accuracy"] > 0.9  # a real face model on real faces

    env = {"INFER_WORK_DIR": str(tmp_path / "work"), "PAIRS": pairs, "FACE_INFER": face_infer}
    python = run_script(mindir, LFW, "y", "CPU", "0", "python", cwd=tmp_path, **env)
    assert python.returncode == 0, python.stdout + python.stderr[-3000:]
    cpp = run_script(lite, LFW, "n", "CPU", "0", "cpp", cwd=tmp_path, **env)
    assert cpp.returncode == 0, cpp.stdout + cpp.stderr[-3000:]
    record, _ = read_pair_record(str(tmp_path / "work" / "input"))
    for backend, result in (("python", python), ("cpp", cpp)):
        assert accuracy_line(metrics) in result.stdout, (backend, result.stdout)
        got = read_arrays(str(tmp_path / "work" / f"result_{backend}"), record["orig"] + record["flip"])
        assert np.abs(got - np.concatenate([orig, flip])).max() <= 1e-4, backend
