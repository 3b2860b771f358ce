"""Pair verification from embeddings: scores of every pair under each fusion mode, and every metric labelled with
its protocol.

Mean subtraction (``subtract_mean``), as in the original SphereFace evaluation: while fold k is held out, the
features are centred on the mean feature of the pairs of the other nine folds (both images of each pair),
mu_k = mean{f(a), f(b) : (a, b) not in fold k}, and scored as cos(f(a) - mu_k, f(b) - mu_k). The threshold of
fold k is chosen on those scores of the nine folds; the per-pair score reported (CSV, ROC, plots) is that of its
own held-out fold, so no statistic of a pair's fold ever touches its score.
"""

import numpy as np

from src.eval.embed import FUSIONS, cosine_scores, embed_images, fuse
from src.eval.metrics import roc_metrics
from src.eval.protocol import THRESHOLDS, best_threshold, kfold_accuracy

PROTOCOLS = {
    "kfold": "10-fold cross-validation over the pair set's folds (LFW View 2: its 10 contiguous blocks of 600 "
    "pairs; View 1: equal shares of the same and different lines; list and .bin: 10 contiguous blocks): for "
    "each fold the threshold of best accuracy on the other 9 folds (cosine grid -1..1 step 0.005, 'same' "
    "when score > threshold, the lowest threshold on ties) is applied to it; accuracy = mean (std) over "
    "folds, threshold = mean over folds",
    "best_threshold_all_pairs": "one threshold (same grid) chosen and evaluated on all pairs together: "
    "optimistic, what some repositories report as LFW accuracy",
    "roc": "ROC of the cosine scores of all pairs (scikit-learn): AUC, equal error rate, and the true accept "
    "rate at each false accept rate that the number of different-identity pairs resolves (>= 1/FAR)",
}


def fold_scores(features, pair_set, subtract_mean=False):
    """(scores for ``kfold_accuracy``: row k for all pairs while fold k is held out; each pair's own-fold score).

    Without mean subtraction both are the plain cosine of each pair."""
    first, second, folds = pair_set.first, pair_set.second, pair_set.folds
    if not subtract_mean:
        scores = cosine_scores(features, first, second)
        return scores, scores
    fold_ids = np.unique(folds)
    rows = np.empty((len(fold_ids), len(folds)), np.float64)
    for k, fold in enumerate(fold_ids):
        train = folds != fold
        mean = features[np.concatenate([first[train], second[train]])].mean(axis=0)
        rows[k] = cosine_scores(features - mean, first, second)
    own = rows[np.searchsorted(fold_ids, folds), np.arange(len(folds))]
    return rows, own


def metrics_from_scores(rows, scores, pair_set):
    """{'kfold', 'best_threshold_all_pairs', 'roc'}, each with its 'protocol' text (see ``PROTOCOLS``), from
    ``fold_scores``' two outputs."""
    issame = pair_set.issame
    kfold = kfold_accuracy(rows, issame, pair_set.folds)
    threshold, accuracy = best_threshold(scores, issame, THRESHOLDS)
    return {
        "kfold": {"protocol": PROTOCOLS["kfold"], **kfold},
        "best_threshold_all_pairs": {
            "protocol": PROTOCOLS["best_threshold_all_pairs"],
            "accuracy": accuracy,
            "threshold": threshold,
        },
        "roc": {"protocol": PROTOCOLS["roc"], **roc_metrics(scores, issame)},
    }


def verification_metrics(features, pair_set, subtract_mean=False):
    """Fused features of the pair set's images -> (every metric labelled with its protocol, per-pair scores)."""
    rows, scores = fold_scores(features, pair_set, subtract_mean)
    return metrics_from_scores(rows, scores, pair_set), scores


def summary(metrics):
    """The headline numbers as one flat dict: 'accuracy', 'std', 'threshold' (10-fold), 'accuracy_best_threshold'
    (all pairs), 'auc', 'eer' and every 'tar@far=...'."""
    kfold, roc = metrics["kfold"], metrics["roc"]
    flat = {
        "accuracy": kfold["accuracy"],
        "std": kfold["std"],
        "threshold": kfold["threshold"],
        "accuracy_best_threshold": metrics["best_threshold_all_pairs"]["accuracy"],
    }
    flat.update({key: value for key, value in roc.items() if key != "protocol"})
    return flat


def evaluate_embeddings(orig, flip, pair_set, subtract_mean=False, fusions=FUSIONS):
    """Embeddings of the images and of their mirror images -> ({fusion: metrics}, {fusion: per-pair scores})."""
    metrics, scores = {}, {}
    for mode in fusions:
        metrics[mode], scores[mode] = verification_metrics(fuse(orig, flip, mode), pair_set, subtract_mean)
    return metrics, scores


def evaluate_network(network, images, pair_set, batch_size, fusion="concat", subtract_mean=False):
    """Embed ``images`` (aligned, in ``pair_set`` order) with ``network`` and score the pairs under ``fusion``:
    (metrics, per-pair scores)."""
    orig, flip = embed_images(network, images, batch_size)
    return verification_metrics(fuse(orig, flip, fusion), pair_set, subtract_mean)
