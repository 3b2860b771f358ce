"""Plot a training run's curves from its metrics.csv (src/train/metrics_log.py): loss.png, accuracy.png
(training accuracy and validation 10-fold accuracy) and lr.png.

    python tools/plot_curves.py RUN_DIR_OR_METRICS_CSV [--out FOLDER]
"""

import argparse
import os
import sys

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from src.model_utils.cli import run_main  # noqa: E402
from src.train.metrics_log import read_metrics  # noqa: E402

# file name -> (y label, [(tag, legend label)])
FIGURES = {
    "loss.png": ("loss", [("train/loss", "training loss")]),
    "accuracy.png": (
        "accuracy",
        [("train/accuracy", "training accuracy (batch)"), ("val/accuracy", "validation accuracy (10-fold)")],
    ),
    "lr.png": ("learning rate", [("train/lr", "learning rate")]),
}


def plot_curves(metrics_csv, out_dir):
    """Write the figures of ``FIGURES`` whose tags the CSV has; returns their paths."""
    series = read_metrics(metrics_csv)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, (ylabel, curves) in FIGURES.items():
        present = [(tag, label) for tag, label in curves if tag in series]
        if not present:
            continue
        fig = Figure(figsize=(7, 4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for tag, label in present:
            steps, values = series[tag]
            ax.plot(steps, values, marker="o" if tag.startswith("val/") else None, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(out_dir, name)
        fig.savefig(path, dpi=100)
        written.append(path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a training output folder or its metrics.csv")
    parser.add_argument("--out", help="folder for the PNGs (default: beside the CSV)")
    args = parser.parse_args(argv)
    csv_path = os.path.join(args.run, "metrics.csv") if os.path.isdir(args.run) else args.run
    if not os.path.isfile(csv_path):
        sys.exit(f"error: no metrics CSV at {csv_path}")
    for path in plot_curves(csv_path, args.out or os.path.dirname(os.path.abspath(csv_path))):
        print(path)


if __name__ == "__main__":
    sys.exit(run_main(main))
