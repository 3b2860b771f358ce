"""The 1:N (open-set) threshold of infer.py: the strictest FAR-based threshold (FAR 1e-3 or stricter) of eval.py's
JSON or the sidecar, saying which; without one, the verification threshold with a warning (README, 1:N)."""

import json
import logging
import os

import pytest

from src.infer import command as infer_cli
from src.model_utils.config import load_config
from tests.infer_photos import ARGS, make_photos, tiny_model


@pytest.fixture
def model(tmp_path):
    return tiny_model(tmp_path)


@pytest.fixture
def photos(tmp_path, monkeypatch):
    return make_photos(tmp_path, monkeypatch)


def rates(threshold, far):
    return {"threshold": threshold, "tar": 0.9, "far": far, "accuracy": 0.95}


def write_eval_json(path, model_path, fusion, far3, far4):
    thresholds = {
        "rule": "...",
        "fusion": fusion,
        "far1e-3": far3 and rates(far3, 1e-3),
        "far1e-4": far4 and rates(far4, 1e-4),
        "best_acc": rates(0.2, 0.05),
    }
    path.write_text(json.dumps({"models": {model_path: {"thresholds": thresholds}}}), encoding="utf-8")


def test_search_takes_the_strictest_far_threshold_or_warns_that_there_is_none(model, photos, tmp_path, capsys, caplog):
    fusion = load_config(ARGS).fusion
    search = ARGS + [
        f"--ckpt_file={model}",
        "--gallery",
        str(tmp_path / "gallery"),
        "--query",
        photos["queries/ann.png"],
    ]
    eval_json = tmp_path / "eval.json"
    write_eval_json(eval_json, model, fusion, 0.35, 0.5)
    assert infer_cli.cli(search + ["--eval_json", str(eval_json)]) == 0
    out = capsys.readouterr().out
    assert f"open-set threshold 0.5000: far1e-4 (TAR 0.9000 at FAR 1.00e-04), from {eval_json}" in out
    write_eval_json(eval_json, model, fusion, None, None)  # a set with fewer than 1,000 different pairs
    sidecar = {"value": 0.27, "rule": "best_acc", "fusion": fusion, "target": None, "tar": 0.95, "far": 0.05}
    with open(model + ".json", "w", encoding="utf-8") as f:
        json.dump({"threshold": sidecar}, f)
    try:
        with caplog.at_level(logging.WARNING):
            assert infer_cli.cli(search + ["--eval_json", str(eval_json)]) == 0
        assert "open-set search has no calibrated threshold (no FAR 1e-3 or stricter threshold" in caplog.text
        assert "using the verification threshold 0.2700 (best_acc" in caplog.text
        assert "open-set threshold" not in capsys.readouterr().out
        caplog.clear()
        assert infer_cli.cli(search + ["--eval_json", str(eval_json), "--same_threshold=0.9"]) == 0
        assert "no calibrated threshold" not in caplog.text
    finally:
        os.remove(model + ".json")
