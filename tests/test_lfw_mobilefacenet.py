"""Acceptance on real data: the PyTorch MobileFaceNet (CASIA-WebFace, 112x96) converted with
tools/convert_torch.py and evaluated by eval.py on LFW View 2 as users have it: all 6000 pairs of the official
pairs.txt, raw images (images_150) aligned on the fly with the 5-point landmarks.

Reference (PyTorch, same weights and alignment, the shared model's README): 10-fold accuracy 98.95% with
concat(orig, flip) features, 98.60% orig only, 98.97% orig + flip summed. Needs ../shared and PyTorch (to read
the checkpoint); about 15,400 forward passes: 5-20 minutes on two CPU cores, hence ``slow``.
"""

import importlib.util
import json
import os

import pytest

from src.eval.evaluation import evaluate
from src.model_utils.config import load_config
from tools.convert_torch import main as convert_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = {"concat": 0.9895, "orig": 0.9860, "sum": 0.9897}
TOLERANCE = 0.0015


@pytest.mark.slow
def test_converted_mobilefacenet_on_lfw_view2(shared_dir, tmp_path):
    torch_ckpt = os.path.join(shared_dir, "models", "mobilefacenet_casia", "068.ckpt")
    lfw = os.path.join(shared_dir, "data", "lfw")
    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed (needed to read the checkpoint: pip install torch==2.13.0)")
    converted = str(tmp_path / "mobilefacenet.ckpt")
    convert_main(["--backbone", "mobilefacenet", "--torch_ckpt", torch_ckpt, "--output", converted])
    output = tmp_path / "lfw.json"
    evaluate(
        load_config(
            [
                "--config_path",
                os.path.join(ROOT, "configs", "mobilefacenet_lfw_eval.yaml"),
                f"--ckpt_file={converted}",
                f"--eval_pairs={os.path.join(lfw, 'pairs.txt')}",
                f"--eval_root={os.path.join(lfw, 'images_150')}",
                f"--eval_landmarks={os.path.join(lfw, 'lfw_landmark_150.txt')}",
                f"--eval_output={output}",
            ]
        )
    )
    with open(output, encoding="utf-8") as f:
        record = json.load(f)
    assert record["pair_set"]["pairs"] == 6000 and record["pair_set"]["images"] == 7701
    metrics = record["models"][converted]["metrics"]
    for mode, reference in REFERENCE.items():
        assert metrics[mode]["kfold"]["accuracy"] == pytest.approx(reference, abs=TOLERANCE), mode
    roc = metrics["concat"]["roc"]
    assert roc["auc"] > 0.998 and roc["eer"] < 0.015
    assert set(roc) == {"protocol", "auc", "eer", "tar@far=0.1", "tar@far=0.01", "tar@far=0.001"}
