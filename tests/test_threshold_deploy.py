"""The deployable threshold travelling from eval.py's JSON through export.py's sidecar to the Predictor and
infer.py (an explicit --same_threshold still wins), and the clear refusals on the way."""

import json
import os

import mindspore as ms
import numpy as np
import pytest
from tiny_training import TINY_EVAL, digits_targets

from src.data.digits import prepare_digits
from src.deploy.export_model import run_export
from src.deploy.sidecar_threshold import ThresholdError, threshold_from_eval
from src.eval.evaluation import evaluate
from src.infer import command as infer_cli
from src.infer.predictor import Predictor
from src.model_utils.config import load_config
from src.network import build_backbone

TINY = TINY_EVAL + ["--fusion=concat"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A tiny random checkpoint, eval.py's JSON of it on the digits pairs, and its MINDIR exported with the
    best-accuracy threshold."""
    folder = tmp_path_factory.mktemp("threshold")
    digits = prepare_digits(str(folder / "digits"), (32, 32), pairs_per_fold=8)
    net = build_backbone("sphere4", embedding_size=8, image_size=(32, 32), width=0.125)
    rng = np.random.default_rng(4)
    for param in net.trainable_params():
        param.set_data(ms.Tensor(rng.normal(0, 0.3, param.shape).astype(np.float32)))
    ckpt = str(folder / "net.ckpt")
    ms.save_checkpoint(net, ckpt)
    eval_json = str(folder / "eval.json")
    evaluate(
        load_config(
            TINY
            + [
                f"--ckpt_file={ckpt}",
                f"--val_targets={digits_targets(digits)}",
                f"--eval_output={eval_json}",
                "--eval_plots=false",
            ]
        )
    )
    mindir = run_export(
        load_config(
            TINY_EVAL
            + [
                f"--ckpt_file={ckpt}",
                f"--file_name={folder / 'net'}",
                f"--threshold_from={eval_json}",
                "--threshold_rule=best_acc",
            ]
        )
    )
    assert mindir == 0
    return {"digits": digits, "ckpt": ckpt, "eval_json": eval_json, "mindir": str(folder / "net.mindir")}


def test_threshold_reaches_the_sidecar_and_the_predictor(evaluated):
    record = json.load(open(evaluated["eval_json"], encoding="utf-8"))
    expected = record["models"][evaluated["ckpt"]]["thresholds"]["best_acc"]
    assert (
        expected["threshold"]
        == record["models"][evaluated["ckpt"]]["metrics"]["concat"]["best_threshold_all_pairs"]["threshold"]
    )
    stored = json.load(open(evaluated["mindir"] + ".json", encoding="utf-8"))["threshold"]
    assert stored["value"] == expected["threshold"] and stored["rule"] == "best_acc"
    assert stored["fusion"] == "concat" and stored["accuracy"] == expected["accuracy"]
    predictor = Predictor(load_config(TINY), evaluated["mindir"])
    assert predictor.threshold == expected["threshold"]
    assert "best_acc" in predictor.threshold_source and evaluated["mindir"] + ".json" in predictor.threshold_source
    # Another fusion than the one the threshold was measured with: not used.
    assert Predictor(load_config(TINY + ["--fusion=sum"]), evaluated["mindir"]).threshold is None
    # A checkpoint has no sidecar.
    assert Predictor(load_config(TINY), evaluated["ckpt"]).threshold is None


def test_infer_uses_the_sidecar_threshold_unless_told(evaluated, capsys):
    root = evaluated["digits"]["eval_root"]
    a, b = os.path.join(root, "digit7/digit7_0001.png"), os.path.join(root, "digit8/digit8_0001.png")
    model = f"--ckpt_file={evaluated['mindir']}"
    threshold = Predictor(load_config(TINY), evaluated["mindir"]).threshold
    infer_cli.main([a, b, model, "--aligned"] + TINY)
    out = [line for line in capsys.readouterr().out.splitlines() if " INFO device " not in line]
    assert out[0].startswith(f"threshold {threshold:.4f}: best_acc") and "--same_threshold overrides" in out[0]
    cosine = float(out[1].split()[0].split("=")[1])
    verdict = "same" if cosine > threshold else "different"
    assert out[1].endswith(f"{verdict} (threshold {threshold:.4f})")
    infer_cli.main([a, b, model, "--aligned", f"--same_threshold={cosine - 0.01}"] + TINY)
    out = capsys.readouterr().out
    assert "best_acc" not in out and f"same (threshold {cosine - 0.01:.4f})" in out


def test_refusals_name_the_file(evaluated, tmp_path):
    json_path = evaluated["eval_json"]
    with pytest.raises(ThresholdError, match=f"{json_path}: far1e-3 is not resolved by the pair set"):
        threshold_from_eval(json_path, evaluated["ckpt"], "far1e-3")
    with pytest.raises(ThresholdError, match=f"{json_path}: has no results of other.ckpt"):
        threshold_from_eval(json_path, "other.ckpt", "best_acc")
    multi = tmp_path / "multi.json"
    thresholds = {
        "rule": "r",
        "fusion": "concat",
        "far1e-3": {"threshold": 0.31, "tar": 0.9, "far": 1e-3, "accuracy": 0.95},
    }
    multi.write_text(
        json.dumps(
            {"models": {"m.ckpt": {"targets": {"lfw": {"thresholds": thresholds}, "cfp": {"thresholds": thresholds}}}}}
        )
    )
    with pytest.raises(ThresholdError, match=f"{multi}: evaluated 2 targets .*--threshold_target"):
        threshold_from_eval(str(multi), "m.ckpt", "far1e-3")
    chosen = threshold_from_eval(str(multi), "m.ckpt", "far1e-3", "cfp")
    assert (chosen["value"], chosen["target"], chosen["tar"]) == (0.31, "cfp", 0.9)
    with pytest.raises(ThresholdError, match=f"{multi}: no target 'agedb'"):
        threshold_from_eval(str(multi), "m.ckpt", "far1e-3", "agedb")
