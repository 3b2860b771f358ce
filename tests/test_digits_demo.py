"""The digits demo's claim, checked on its output: on its verification task the trained network beats the
raw- and centred-pixel cosines and the untrained network scored on the same pairs (tools/digits_demo.py,
demo_results.json)."""

import json
import os

import pytest

from src.data.digits import TASKS, prepare_digits
from src.eval.pairs import read_pairs
from tools import digits_demo


def read_list(path):
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f if line.strip()]


def test_unseen_scans_hold_out_the_last_third_of_every_digit(tmp_path):
    paths = prepare_digits(str(tmp_path), (8, 8), task="unseen_scans")
    train, heldout = read_list(paths["train_list"]), read_list(paths["heldout_list"])
    assert len(train) + len(heldout) == 1797
    for digit in range(10):
        trained = sum(label == str(digit) for _, label in train)
        held = sum(label == str(digit) for _, label in heldout)
        assert held > 0 and abs(trained - 2 * held) <= 2, (digit, trained, held)
    heldout_files = {relpath for relpath, _ in heldout}
    assert all(os.path.isfile(os.path.join(paths["eval_root"], p)) for p in heldout_files)
    pair_set = read_pairs(paths["eval_pairs"], paths["eval_root"], ".png")
    assert len(pair_set) == 600 and pair_set.issame.sum() == 300
    assert set(pair_set.relpaths) <= heldout_files


def test_unknown_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown digits task 'faces'"):
        prepare_digits(str(tmp_path), task="faces")


def test_demo_beats_the_baselines_on_its_own_pairs(tmp_path):
    """One head with the demo's recipe and a 1-epoch 3-D plot run: the head's 10-fold accuracy in
    demo_results.json (the one eval.py wrote) beats every baseline there."""
    out = tmp_path / "demo"
    digits_demo.main(["--heads", "cosface", "--plot_epochs", "1", "--output_dir", str(out), "--cpu_kernels=off"])
    with open(out / digits_demo.RESULTS_FILE, encoding="utf-8") as f:
        record = json.load(f)
    assert record["task"] == "unseen_scans" and record["task_description"] == TASKS["unseen_scans"]
    assert record["pairs"] == 600
    result, baselines = record["heads"]["cosface"], record["baselines"]
    with open(os.path.join(os.path.dirname(result["checkpoint"]), "eval_result.json"), encoding="utf-8") as f:
        evaluated = json.load(f)["models"][result["checkpoint"]]["metrics"]["orig"]["kfold"]["accuracy"]
    assert result["accuracy"] == evaluated
    assert sorted(baselines) == sorted(digits_demo.BASELINES)
    for name, baseline in baselines.items():
        assert 0.5 < baseline["accuracy"] < result["accuracy"], (name, baseline, result)
    assert result["beats_baselines"] is True
    assert os.path.isfile(result["mindir"]) and os.path.isfile(result["plot"])
