"""The no-download demo: train -> verify -> export -> plot, for each head, on scikit-learn's handwritten digits.

    python tools/digits_demo.py [--heads asoftmax arcface ...] [--output_dir output/digits_demo] [--key=value ...]

Digits 0-6 are the training identities; 10 folds of same/different pairs of the held-out digits 7-9 are the
open-set verification test, as LFW is for faces. For each head it trains configs/digits_demo.yaml, prints the
10-fold verification accuracy, keeps the checkpoint, exports a MINDIR, then trains the same network with a 3-D
embedding (``--plot_dim``) and draws the normalised features on the sphere (the SphereFace paper's toy figure).
Extra ``--key=value`` arguments override the config for every run.
"""
import argparse
import inspect
import logging
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from eval import evaluate  # noqa: E402
from export import export  # noqa: E402
from src.data.digits import HELDOUT_CLASSES, prepare_digits  # noqa: E402
from src.data.readers import read_samples  # noqa: E402
from src.eval.embed import embed_images  # noqa: E402
from src.eval.feature_plot import plot_features  # noqa: E402
from src.heads import HEADS  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402
from src.model_utils.config import load_config  # noqa: E402
from src.model_utils.logger import setup_logging  # noqa: E402
from src.data.image_io import load_rgb  # noqa: E402
from src.train.checkpoint import list_checkpoints  # noqa: E402
from train import train  # noqa: E402

CONFIG = os.path.join(ROOT, "configs", "digits_demo.yaml")
# The 3-D toy run: a larger learning rate, and a logit scale of 10 for the heads that have one (s = 64 is meant for
# 512-d embeddings and thousands of classes; with 3 dimensions and 7 classes it stalls optimisation).
PLOT_SETTINGS = ["--lr=0.05"]
PLOT_SCALE = "--margin_s=10"
LOG = logging.getLogger("facerec.demo")


def run_config(overrides):
    return load_config(["--config_path", CONFIG] + overrides)


def data_overrides(paths):
    return [f"--train_list={paths['train_list']}", f"--train_root={paths['train_root']}",
            f"--eval_pairs={paths['eval_pairs']}", f"--eval_root={paths['eval_root']}"]


def plot_head(head, paths, out_dir, plot_dim, plot_epochs, extra):
    """Train with a ``plot_dim``-D embedding and draw training and held-out digits on the circle / sphere."""
    settings = PLOT_SETTINGS + ([PLOT_SCALE] if "s" in inspect.signature(HEADS.get(head)).parameters else [])
    cfg = run_config(data_overrides(paths) + settings + [f"--head={head}", f"--output_dir={out_dir}",
                                                         f"--epochs={plot_epochs}", f"--embedding_size={plot_dim}"]
                     + extra)
    network = train(cfg).network.backbone
    network.set_train(False)
    samples = (read_samples(paths["train_list"], "plain", paths["train_root"])
               + read_samples(paths["heldout_list"], "plain", paths["eval_root"]))
    images = [load_rgb(s.path) for s in samples]
    features, _ = embed_images(network, images, cfg.eval_batch_size)
    path = os.path.join(out_dir, f"features_{head}.png")
    plot_features(features, [s.label for s in samples], path, f"{head}: {plot_dim}-D features, digits",
                  heldout=HELDOUT_CLASSES)
    return path


def run_head(head, paths, out_dir, plot_dim, plot_epochs, extra):
    cfg = run_config(data_overrides(paths) + [f"--head={head}", f"--output_dir={out_dir}"] + extra)
    train(cfg)
    checkpoint = list_checkpoints(os.path.join(out_dir, "checkpoints"))[-1]
    result = evaluate(run_config(data_overrides(paths) + [f"--head={head}", f"--ckpt_file={checkpoint}"] + extra))
    mindir = export(run_config([f"--head={head}", f"--ckpt_file={checkpoint}",
                                f"--file_name={os.path.join(out_dir, 'digits_' + head)}"] + extra))
    plot = None
    if plot_dim:
        plot = plot_head(head, paths, os.path.join(out_dir, f"plot{plot_dim}d"), plot_dim, plot_epochs, extra)
    metrics = result["models"][checkpoint]["metrics"][result["fusion"]]
    return {"accuracy": metrics["kfold"]["accuracy"], "std": metrics["kfold"]["std"], "auc": metrics["roc"]["auc"],
            "checkpoint": checkpoint, "mindir": mindir, "plot": plot}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heads", nargs="+", default=HEADS.names(), choices=HEADS.names())
    parser.add_argument("--output_dir", default="output/digits_demo")
    parser.add_argument("--plot_dim", type=int, default=3, choices=(0, 2, 3),
                        help="embedding size of the feature-plot run (0: no plot)")
    parser.add_argument("--plot_epochs", type=int, default=6, help="epochs of the feature-plot run")
    args, extra = parser.parse_known_args(argv)
    setup_logging(args.output_dir)
    start = time.time()
    image_size = run_config(extra).image_size
    paths = prepare_digits(os.path.join(args.output_dir, "data"), tuple(image_size))
    results = {}
    for head in args.heads:
        head_start = time.time()
        results[head] = run_head(head, paths, os.path.join(args.output_dir, head), args.plot_dim, args.plot_epochs,
                                 extra)
        results[head]["seconds"] = time.time() - head_start
    print("\n| head | verification accuracy (10-fold, held-out digits 7-9) | AUC | seconds | feature plot |")
    print("|---|---|---|---|---|")
    for head, r in results.items():
        print(f"| {head} | {100 * r['accuracy']:.2f} +- {100 * r['std']:.2f} % | {r['auc']:.4f} | "
              f"{r['seconds']:.0f} | {r['plot'] or '-'} |")
    print(f"\ntotal wall time {time.time() - start:.0f} s; checkpoints, MINDIR files and plots under {args.output_dir}")
    return results


if __name__ == "__main__":
    sys.exit(run_main(main))
