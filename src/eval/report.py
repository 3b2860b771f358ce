"""Evaluation outputs: the ``LFWACC=`` line, the table of a folder of checkpoints, the per-pair score CSV, the ROC
curve (log false-accept-rate axis) and the histogram of same/different scores (matplotlib, Agg backend)."""

import csv

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from src.eval.metrics import tar_at_far


def accuracy_line(metrics):
    """``LFWACC=0.xxxx std=0.xxxx thd=0.xxxx`` from one fusion's metrics (the 10-fold protocol)."""
    kfold = metrics["kfold"]
    return f"LFWACC={kfold['accuracy']:.4f} std={kfold['std']:.4f} thd={kfold['threshold']:.4f}"


def summary_line(metrics):
    """The 10-fold accuracy, best-threshold accuracy and ROC figures of one fusion on one line."""
    roc = metrics["roc"]
    tars = " ".join(f"{key.upper()}={value:.4f}" for key, value in roc.items() if key.startswith("tar@"))
    return (
        f"{accuracy_line(metrics)} acc_best_thd_all={metrics['best_threshold_all_pairs']['accuracy']:.4f} "
        f"auc={roc['auc']:.5f} eer={roc['eer']:.4f} {tars}"
    )


def results_table(rows, best):
    """A text table of ``rows`` [(name, metrics of the chosen fusion)], the row named ``best`` marked with '*';
    the last column is the TAR at the smallest FAR the pair set resolves."""
    tars = [key for key in rows[0][1]["roc"] if key.startswith("tar@")]
    header = ["", "model", "10-fold acc", "std", "thd", "best-thd acc", "AUC", "EER"] + [t.upper() for t in tars[-1:]]
    lines = [header]
    for name, metrics in rows:
        kfold, roc = metrics["kfold"], metrics["roc"]
        lines.append(
            [
                "*" if name == best else "",
                name,
                f"{kfold['accuracy']:.4f}",
                f"{kfold['std']:.4f}",
                f"{kfold['threshold']:.3f}",
                f"{metrics['best_threshold_all_pairs']['accuracy']:.4f}",
                f"{roc['auc']:.5f}",
                f"{roc['eer']:.4f}",
            ]
            + [f"{roc[t]:.4f}" for t in tars[-1:]]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text) + "\n(* = best 10-fold accuracy)"


def write_scores_csv(path, pair_set, scores):
    """One row per pair: index, fold, same, the two images, then the cosine score of each fusion mode."""
    modes = list(scores)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["pair", "fold", "same", "image1", "image2"] + [f"score_{mode}" for mode in modes])
        for i, (a, b) in enumerate(zip(pair_set.first, pair_set.second)):
            writer.writerow(
                [i, int(pair_set.folds[i]), int(pair_set.issame[i]), pair_set.relpaths[a], pair_set.relpaths[b]]
                + [f"{scores[mode][i]:.6f}" for mode in modes]
            )


def new_figure(**kwargs):
    """A Figure with one Axes on the Agg canvas (matplotlib's object API: no pyplot state, no backend switch)."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def plot_roc(path, scores, issame, title):
    """TAR against FAR on a log axis, one curve per fusion mode; the FAR axis starts at 1 / (different pairs), the
    TAR axis just below the lowest TAR there."""
    issame = np.asarray(issame, bool)
    smallest = 1.0 / max(int((~issame).sum()), 1)
    fig, ax = new_figure(figsize=(6, 4.5))
    lowest = 1.0
    for mode, values in scores.items():
        fpr, tpr, _ = roc_curve(issame, values)
        ax.plot(np.maximum(fpr, smallest), tpr, label=mode)
        lowest = min(lowest, tar_at_far(fpr, tpr, smallest))
    ax.set_xscale("log")
    ax.set_xlim(smallest, 1.0)
    ax.set_ylim(max(0.0, lowest - 0.02), 1.002)
    ax.set_xlabel("false accept rate (log scale)")
    ax.set_ylabel("true accept rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="fusion", loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_histogram(path, scores, issame, threshold, title):
    """Histograms of the same-identity and different-identity cosine scores, with the chosen threshold."""
    issame = np.asarray(issame, bool)
    fig, ax = new_figure(figsize=(6, 4.5))
    bins = np.linspace(min(-0.2, float(scores.min())), 1.0, 61)
    ax.hist(scores[issame], bins=bins, alpha=0.6, label=f"same ({issame.sum()})", color="tab:green")
    ax.hist(scores[~issame], bins=bins, alpha=0.6, label=f"different ({(~issame).sum()})", color="tab:red")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("pairs")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


TABLE_FARS = ("1e-3", "1e-4")


def targets_table(rows):
    """A text table of one model on several pair sets: ``rows`` [(target name, pairs, metrics of the chosen
    fusion)]; the TAR columns say '-' where the set has fewer than 1/FAR different pairs. Ends with the mean
    10-fold accuracy."""
    header = ["target", "pairs", "10-fold acc +- std", "AUC", "EER"] + [f"TAR@FAR={far}" for far in TABLE_FARS]
    lines = [header]
    for name, pairs, metrics in rows:
        kfold, roc = metrics["kfold"], metrics["roc"]
        tars = [
            f"{roc[f'tar@far={float(far):g}']:.4f}" if f"tar@far={float(far):g}" in roc else "-" for far in TABLE_FARS
        ]
        lines.append(
            [
                name,
                str(pairs),
                f"{100 * kfold['accuracy']:.2f} +- {100 * kfold['std']:.2f}",
                f"{roc['auc']:.5f}",
                f"{roc['eer']:.4f}",
            ]
            + tars
        )
    mean = np.mean([metrics["kfold"]["accuracy"] for _, _, metrics in rows])
    lines.append(["mean", "", f"{100 * mean:.2f}", "", ""] + [""] * len(TABLE_FARS))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "-" * len(text[0]))
    text.insert(len(text) - 1, "-" * len(text[0]))
    return "\n".join(text)
