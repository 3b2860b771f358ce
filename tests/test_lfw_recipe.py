"""The LFW View 1 recipe: tools/compare_runs.py on hand-made run files, and the whole script for one head."""

import json
import math
import os
import subprocess
import sys

import pytest

from tools.compare_runs import main as compare_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")


def write_run(folder, head, evals, log_lines):
    os.makedirs(os.path.join(folder, "checkpoints"))
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump({"head": head}, f)
    with open(os.path.join(folder, "checkpoints", "eval_result.json"), "w", encoding="utf-8") as f:
        models = {
            os.path.join(folder, "checkpoints", f"step_{step:08d}.ckpt"): {"metrics": {"concat": result}}
            for step, result in evals
        }
        json.dump({"fusion": "concat", "pair_set": {"pairs": 999}, "models": models}, f)
    with open(os.path.join(folder, "log_rank0.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(log_lines) + "\n")


def metrics(accuracy, std, auc, tar):
    """The shape of one fusion's metrics in eval.py's JSON."""
    return {
        "kfold": {"accuracy": accuracy, "std": std, "threshold": 0.3},
        "best_threshold_all_pairs": {"accuracy": accuracy},
        "roc": {"auc": auc, "eer": 0.1, "tar@far=0.01": tar},
    }


def test_table_and_curves_come_from_the_run_files(tmp_path):
    run = str(tmp_path / "arc")
    write_run(
        run,
        "arcface",
        [(20, metrics(0.9, 0.01, 0.95, 0.4)), (10, metrics(0.7, 0.02, 0.8, 0.1))],
        [
            "10:00:00 INFO training sphere10 + arcface for 20 steps (10 per epoch), global batch 8",
            "10:00:05 INFO epoch 1 step 10/20 loss 9.5000 acc 0.1000 lr 0.100000 50.0 img/s ETA 0:00:05",
            "10:00:09 INFO epoch 2 step 20/20 loss 7.2500 acc 0.3000 lr 0.000000 50.0 img/s ETA 0:00:00",
            "10:00:09 INFO finished 20 steps in 123.4 s; 2 updates skipped (non-finite), 0 unreadable images skipped",
        ],
    )
    table, plot = str(tmp_path / "t.md"), str(tmp_path / "p.png")
    (summary,) = compare_runs([run, "--table", table, "--plot", plot])
    assert summary["curve"] == [(10, 0.7), (20, 0.9)]
    row = "| arcface | 90.00 +- 1.00 % | 0.9500 | 0.4000 | 7.2500 | 2 | 123 s | 20 |"
    assert open(table, encoding="utf-8").read().splitlines()[2] == row
    assert open(plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_an_unfinished_run_is_named(tmp_path):
    run = str(tmp_path / "cut")
    write_run(
        run,
        "linear",
        [(10, metrics(0.6, 0.0, 0.6, 0.0))],
        ["10:00:05 INFO epoch 1 step 10/20 loss 9.5000 acc 0.1000 lr 0.100000 50.0 img/s ETA 0:00:05"],
    )
    with pytest.raises(ValueError, match="log_rank0.txt: no progress line or no 'finished"):
        compare_runs([run, "--plot", str(tmp_path / "p.png")])


@pytest.mark.slow
def test_recipe_script_one_epoch_for_one_head(tmp_path):
    """One epoch of the real recipe (CosFace head, configs/lfw_view1_cosface.yaml) through
    scripts/run_lfw_view1_recipe.sh, started from another folder."""
    if not os.path.isdir(SHARED):
        pytest.skip(f"the shared data folder ../shared ({os.path.abspath(SHARED)}) is absent")
    env = dict(os.environ, PYTHON=sys.executable, RECIPE_ARGS="--epochs=1")
    out = tmp_path / "recipe"
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "run_lfw_view1_recipe.sh"), str(out), "cosface"],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    config = json.load(open(out / "cosface" / "config.json", encoding="utf-8"))
    assert (config["head"]["type"], config["head"]["s"], config["backbone"], config["epochs"]) == (
        "cosface",
        30.0,
        "sphere10",
        1,
    )
    log = (out / "cosface" / "log_rank0.txt").read_text()
    assert "finished 77 steps" in log and "0 updates skipped (non-finite)" in log
    record = json.load(open(out / "cosface" / "checkpoints" / "eval_result.json", encoding="utf-8"))
    assert [os.path.basename(p) for p in record["models"]] == ["step_00000077.ckpt"]
    assert record["pair_set"]["pairs"] == 999
    assert record["pair_set"]["missing_images"] == ["Betsy_Coffin/Betsy_Coffin_0001.jpg"]
    (entry,) = record["models"].values()
    kfold, roc = entry["metrics"]["concat"]["kfold"], entry["metrics"]["concat"]["roc"]
    assert all(math.isfinite(v) for v in (kfold["accuracy"], kfold["std"], roc["auc"], roc["tar@far=0.01"]))
    assert len(kfold["fold_accuracies"]) == 10
    assert kfold["accuracy"] > 0.55, "one epoch on 430 real identities should already beat chance on DevTest"
    rows = (out / "results.md").read_text().splitlines()
    assert len(rows) == 3 and rows[2].startswith("| cosface | ")
    numbers = [float(v) for v in rows[2].replace("%", "").replace(" s ", " ").replace("+-", "|").split("|")[2:-1]]
    assert len(numbers) == 8 and all(math.isfinite(v) for v in numbers) and numbers[-1] == 77
    assert (out / "validation_curves.png").stat().st_size > 1000
    assert "total wall time:" in proc.stdout
