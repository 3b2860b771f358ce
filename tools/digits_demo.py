"""The no-download demo: train -> verify -> export -> plot, for each head, on scikit-learn's handwritten digits.

    python tools/digits_demo.py [--heads asoftmax cosface ...] [--task unseen_scans] [--output_dir DIR]
                                [--plot_dim 3] [--key=value ...]

The task (src/data/digits.py) is a verification test written like LFW: 10 folds of same/different pairs of
held-out scans. ``unseen_scans`` (default): every digit trains on the first two thirds of its scans and the pairs
are drawn from the last third; ``unseen_digits``: digits 0-6 train, the pairs are of the digits 7-9 (open set).
For each head it trains configs/digits_demo.yaml, scores the pairs (10-fold accuracy), keeps the checkpoint,
exports a MINDIR, then trains the same network with a 3-D embedding (``--plot_dim``) and draws the normalised
features on the sphere (the SphereFace paper's toy figure). Three baselines are scored on the same pairs with the
same protocol (``BASELINES``): the cosine of the raw pixels, of the centred pixels the network takes, and the
network at its initial weights. The final table and ``demo_results.json`` in the output folder put them next to
every head's accuracy; a head "beats all three" when its accuracy is above the best of them. Extra ``--key=value``
arguments override the config for every run.
"""

import argparse
import json
import logging
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from src.data.digits import DEMO_TASK, TASKS, heldout_classes, prepare_digits  # noqa: E402
from src.data.image_io import load_rgb, to_input  # noqa: E402
from src.data.readers import read_samples  # noqa: E402
from src.deploy.export_model import export  # noqa: E402
from src.eval.embed import embed_images  # noqa: E402
from src.eval.evaluation import evaluate  # noqa: E402
from src.eval.feature_plot import plot_features  # noqa: E402
from src.eval.pair_images import load_pair_images  # noqa: E402
from src.eval.sources import read_pair_set  # noqa: E402
from src.eval.targets import targets_from_config  # noqa: E402
from src.eval.verify import evaluate_network, summary, verification_metrics  # noqa: E402
from src.heads import MARGINS, margin_parameters  # noqa: E402
from src.kernels.accelerate import kernels_enabled  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402
from src.model_utils.config import flow, load_config  # noqa: E402
from src.model_utils.device import init_device  # noqa: E402
from src.model_utils.logger import setup_logging  # noqa: E402
from src.network import build_backbone_from_config  # noqa: E402
from src.train.checkpoint import list_checkpoints  # noqa: E402
from src.train.loop import train  # noqa: E402

CONFIG = os.path.join(ROOT, "configs", "digits_demo.yaml")
DEFAULT_HEADS = ["asoftmax", "cosface", "arcface"]
# The 3-D toy run: a larger learning rate, and a logit scale of 10 for the heads that have one (s = 64 is meant for
# 512-d embeddings and thousands of classes; with 3 dimensions and 7-10 classes it stalls optimisation).
PLOT_SETTINGS = ["--lr=0.05"]
PLOT_SCALE = "--head.s=10"
BASELINES = {
    "raw_pixels": "cosine of the raw pixel values (0-255)",
    "centred_pixels": "cosine of the network's input pixels (127.5 subtracted)",
    "untrained": "the same network at its initial weights (same seed)",
}
RESULTS_FILE = "demo_results.json"
LOG = logging.getLogger("facerec.demo")


def run_config(overrides):
    return load_config(
        ["--config_path", CONFIG] + overrides, entry="digits_demo", block_variants={"head": margin_parameters}
    )


def data_overrides(paths):
    return [
        f"--train_list={paths['train_list']}",
        f"--train_root={paths['train_root']}",
        f"--val_targets={flow([{'pairs': paths['eval_pairs'], 'root': paths['eval_root'], 'image_ext': '.png'}])}",
    ]


def baseline_metrics(cfg, target, pair_set):
    """{baseline: summary metrics} of ``BASELINES`` on ``pair_set`` (read from ``target``), with the
    10-fold protocol of ``evaluate``."""
    images = load_pair_images(pair_set, cfg.image_size, None, target.fit)
    raw, _ = verification_metrics(images.reshape(len(images), -1).astype(np.float32), pair_set)
    centred, _ = verification_metrics(to_input(images).reshape(len(images), -1), pair_set)
    init_device(cfg, kernels_enabled(cfg.cpu_kernels, cfg.device_target))
    network = build_backbone_from_config(cfg)
    network.set_train(False)
    untrained, _ = evaluate_network(network, images, pair_set, cfg.eval_batch_size, cfg.fusion)
    return {"raw_pixels": summary(raw), "centred_pixels": summary(centred), "untrained": summary(untrained)}


def plot_head(head, paths, out_dir, plot_dim, plot_epochs, heldout, extra):
    """Train with a ``plot_dim``-D embedding and draw training and held-out scans on the circle / sphere."""
    settings = PLOT_SETTINGS + ([PLOT_SCALE] if "s" in MARGINS.get(head).PARAMS else [])
    cfg = run_config(
        data_overrides(paths)
        + settings
        + [f"--head.type={head}", f"--output_dir={out_dir}", f"--epochs={plot_epochs}", f"--embedding_size={plot_dim}"]
        + extra
    )
    network = train(cfg).network.backbone
    network.set_train(False)
    samples = read_samples(paths["train_list"], "plain", paths["train_root"]) + read_samples(
        paths["heldout_list"], "plain", paths["eval_root"]
    )
    images = [load_rgb(s.path) for s in samples]
    features, _ = embed_images(network, images, cfg.eval_batch_size)
    path = os.path.join(out_dir, f"features_{head}.png")
    plot_features(features, [s.label for s in samples], path, f"{head}: {plot_dim}-D features, digits", heldout=heldout)
    return path


def run_head(head, paths, out_dir, plot_dim, plot_epochs, heldout, extra):
    cfg = run_config(data_overrides(paths) + [f"--head.type={head}", f"--output_dir={out_dir}"] + extra)
    train(cfg)
    checkpoint = list_checkpoints(os.path.join(out_dir, "checkpoints"))[-1]
    result = evaluate(run_config(data_overrides(paths) + [f"--head.type={head}", f"--ckpt_file={checkpoint}"] + extra))
    mindir = export(
        run_config(
            [
                f"--head.type={head}",
                f"--ckpt_file={checkpoint}",
                f"--file_name={os.path.join(out_dir, 'digits_' + head)}",
            ]
            + extra
        )
    )
    plot = None
    if plot_dim:
        plot = plot_head(head, paths, os.path.join(out_dir, f"plot{plot_dim}d"), plot_dim, plot_epochs, heldout, extra)
    metrics = summary(result["models"][checkpoint]["metrics"][result["fusion"]])
    return dict(metrics, checkpoint=checkpoint, mindir=mindir, plot=plot)


def percent(metrics):
    return f"{100 * metrics['accuracy']:.2f} +- {100 * metrics['std']:.2f} %"


def print_table(record):
    """The final table: every head's 10-fold accuracy next to the baselines on the same pairs."""
    base = record["baselines"]
    print(f"\nTask {record['task']}: {record['task_description']}; {record['pairs']} pairs, 10-fold accuracy.")
    print(
        "| head | accuracy | AUC | raw pixels | centred pixels | untrained network | beats all three | seconds "
        "| feature plot |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for head, r in record["heads"].items():
        print(
            f"| {head} | {percent(r)} | {r['auc']:.4f} | {percent(base['raw_pixels'])} | "
            f"{percent(base['centred_pixels'])} | {percent(base['untrained'])} | "
            f"{'yes' if r['beats_baselines'] else 'NO'} | {r['seconds']:.0f} | {r['plot'] or '-'} |"
        )
    print(
        f"\ntotal wall time {record['seconds']:.0f} s; checkpoints, MINDIR files, plots and {RESULTS_FILE} under "
        f"{record['output_dir']}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--heads",
        nargs="+",
        default=DEFAULT_HEADS,
        choices=MARGINS.names(),
        help=f"heads to train, one run each (default {' '.join(DEFAULT_HEADS)})",
    )
    parser.add_argument(
        "--task", default=DEMO_TASK, choices=sorted(TASKS), help="the verification task (src/data/digits.py)"
    )
    parser.add_argument("--output_dir", default="output/digits_demo")
    parser.add_argument(
        "--plot_dim", type=int, default=3, choices=(0, 2, 3), help="embedding size of the feature-plot run (0: no plot)"
    )
    parser.add_argument("--plot_epochs", type=int, default=12, help="epochs of the feature-plot run")
    args, extra = parser.parse_known_args(argv)
    setup_logging(args.output_dir)
    start = time.time()
    image_size = run_config(extra).image_size
    paths = prepare_digits(os.path.join(args.output_dir, "data"), tuple(image_size), task=args.task)
    cfg = run_config(data_overrides(paths) + extra)
    (target,) = targets_from_config(cfg)
    pair_set = read_pair_set(target.pairs, target.format, target.root, target.image_ext)
    baselines = baseline_metrics(cfg, target, pair_set)
    LOG.info("baselines: %s", ", ".join(f"{name} {percent(b)}" for name, b in baselines.items()))
    best_baseline = max(b["accuracy"] for b in baselines.values())
    record = {
        "task": args.task,
        "task_description": TASKS[args.task],
        "pairs": len(pair_set),
        "baseline_descriptions": BASELINES,
        "baselines": baselines,
        "heads": {},
        "output_dir": args.output_dir,
    }
    results_path = os.path.join(args.output_dir, RESULTS_FILE)
    for head in args.heads:
        head_start = time.time()
        result = run_head(
            head,
            paths,
            os.path.join(args.output_dir, head),
            args.plot_dim,
            args.plot_epochs,
            heldout_classes(args.task),
            extra,
        )
        result["seconds"] = time.time() - head_start
        result["beats_baselines"] = bool(result["accuracy"] > best_baseline)
        record["heads"][head] = result
        record["seconds"] = time.time() - start
        with open(results_path, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
    print_table(record)
    return record


if __name__ == "__main__":
    sys.exit(run_main(main))
