"""One comparison of training runs: a Markdown table and a plot of the validation curves.

    python tools/compare_runs.py RUN_DIR [RUN_DIR ...] [--table results.md] [--plot validation_curves.png]

Every number comes from the runs' own files: ``RUN_DIR/config.json`` (head), ``RUN_DIR/log_rank0.txt`` (the last
progress line's loss, the training wall time and the count of skipped non-finite updates, as train.py logged
them) and ``RUN_DIR/checkpoints/eval_result.json`` (eval.py's metrics for every periodic checkpoint; the table
shows the last checkpoint's, the plot all of them).
"""

import argparse
import json
import math
import os
import re
import sys

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from src.eval.verify import summary  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402

PROGRESS = re.compile(r" step (\d+)/(\d+) loss (\S+) acc (\S+) ")
FINISHED = re.compile(r"finished (\d+) steps in ([\d.]+) s[^;]*; (\d+) updates skipped")
CHECKPOINT_STEP = re.compile(r"step_(\d+)\.ckpt$")
TAR_KEY = "tar@far=0.01"


def read_json(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"not found: {path} (is this a finished, evaluated run?)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_training_log(path):
    """The last progress line's (step, loss) and the last 'finished' line's (seconds, skipped updates)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"training log not found: {path}")
    progress = finished = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            progress = PROGRESS.search(line) or progress
            finished = FINISHED.search(line) or finished
    if progress is None or finished is None:
        raise ValueError(f"{path}: no progress line or no 'finished N steps' line: the training did not finish")
    return {
        "final_step": int(progress.group(1)),
        "final_loss": float(progress.group(3)),
        "train_seconds": float(finished.group(2)),
        "skipped_updates": int(finished.group(3)),
    }


def validation_curve(eval_results, path):
    """[(step, result)] sorted by step from eval.py's JSON of a checkpoint folder."""
    curve = []
    fusion = eval_results["fusion"]
    for model, entry in eval_results["models"].items():
        result = summary(entry["metrics"][fusion])
        match = CHECKPOINT_STEP.search(model)
        if match is None:
            raise ValueError(f"{path}: '{model}' is not a step_XXXXXXXX.ckpt checkpoint")
        curve.append((int(match.group(1)), result))
    if not curve:
        raise ValueError(f"{path}: no evaluated checkpoints")
    return sorted(curve, key=lambda item: item[0])


def summarize_run(run_dir):
    """Everything the table and the plot need from one run folder."""
    config = read_json(os.path.join(run_dir, "config.json"))
    eval_path = os.path.join(run_dir, "checkpoints", "eval_result.json")
    record = read_json(eval_path)
    curve = validation_curve(record, eval_path)
    final_step, final = curve[-1]
    head = config["head"]  # a block {type: ..., ...}; runs before the head block hold the name
    summary = {
        "run": run_dir,
        "head": head["type"] if isinstance(head, dict) else head,
        "curve": [(s, r["accuracy"]) for s, r in curve],
        "step": final_step,
        "accuracy": final["accuracy"],
        "std": final["std"],
        "auc": final["auc"],
        "tar_far_1e-2": final.get(TAR_KEY, math.nan),
        "num_pairs": record["pair_set"]["pairs"],
    }
    summary.update(read_training_log(os.path.join(run_dir, "log_rank0.txt")))
    return summary


def markdown_table(summaries):
    lines = [
        "| head | 10-fold acc +- std | AUC | TAR@FAR=1e-2 | final loss | non-finite steps | train wall time |"
        " checkpoint step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['head']} | {100 * s['accuracy']:.2f} +- {100 * s['std']:.2f} % | {s['auc']:.4f} | "
            f"{s['tar_far_1e-2']:.4f} | {s['final_loss']:.4f} | {s['skipped_updates']} | "
            f"{s['train_seconds']:.0f} s | {s['step']} |"
        )
    return "\n".join(lines) + "\n"


def plot_curves(summaries, path):
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for s in summaries:
        steps, accuracies = zip(*s["curve"])
        ax.plot(steps, [100 * a for a in accuracies], marker="o", markersize=3, label=s["head"])
    ax.set_xlabel("training step")
    ax.set_ylabel("10-fold verification accuracy (%)")
    ax.set_title("Validation on LFW View 1 pairsDevTest")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="output_dir of a train.py run, evaluated")
    parser.add_argument("--table", default=None, help="also write the Markdown table here")
    parser.add_argument("--plot", default="validation_curves.png", help="PNG of the validation curves")
    args = parser.parse_args(argv)
    summaries = [summarize_run(run) for run in args.runs]
    table = markdown_table(summaries)
    print(table, end="")
    if args.table:
        with open(args.table, "w", encoding="utf-8") as f:
            f.write(table)
    plot_curves(summaries, args.plot)
    print(f"plot: {args.plot}")
    return summaries


if __name__ == "__main__":
    sys.exit(run_main(main))
