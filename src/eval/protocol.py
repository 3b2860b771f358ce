"""Threshold protocols on cosine scores: the LFW 10-fold protocol and the best single threshold on all pairs."""

import numpy as np
from sklearn.model_selection import PredefinedSplit

# The threshold grid of the SphereFace evaluation (cosine scores).
THRESHOLDS = np.arange(-1.0, 1.0, 0.005)


def accuracies_at(scores, issame, thresholds):
    """Fraction of pairs classified right at each threshold (score > threshold means 'same')."""
    scores, issame = np.asarray(scores), np.asarray(issame, bool)
    predicted = scores[None, :] > np.asarray(thresholds)[:, None]
    return np.mean(predicted == issame[None, :], axis=1)


def accuracy_at(scores, issame, threshold):
    """Fraction of pairs classified right when score > threshold means 'same'."""
    return float(accuracies_at(scores, issame, [threshold])[0])


def best_threshold(scores, issame, thresholds=THRESHOLDS):
    """The threshold of highest accuracy (the first one on ties) and that accuracy."""
    accuracies = accuracies_at(scores, issame, thresholds)
    best = int(np.argmax(accuracies))
    return float(thresholds[best]), float(accuracies[best])


def kfold_accuracy(scores, issame, folds, thresholds=THRESHOLDS):
    """For each fold k: the best threshold on the other folds, the accuracy on fold k.

    ``scores`` is one score per pair, or a (folds x pairs) array whose row k holds the scores to use while fold k
    is held out (row k of the sorted fold ids; e.g. features centred on the other folds' mean).
    Returns {'accuracy', 'std', 'threshold' (means over folds), 'fold_accuracies', 'fold_thresholds'}.
    """
    scores, issame, folds = np.asarray(scores, np.float64), np.asarray(issame, bool), np.asarray(folds)
    splitter = PredefinedSplit(folds)
    if scores.ndim == 1:
        scores = np.broadcast_to(scores, (splitter.get_n_splits(), len(scores)))
    fold_accuracies, fold_thresholds = [], []
    for row, (train_idx, test_idx) in zip(scores, splitter.split()):
        threshold, _ = best_threshold(row[train_idx], issame[train_idx], thresholds)
        fold_thresholds.append(threshold)
        fold_accuracies.append(accuracy_at(row[test_idx], issame[test_idx], threshold))
    return {
        "accuracy": float(np.mean(fold_accuracies)),
        "std": float(np.std(fold_accuracies)),
        "threshold": float(np.mean(fold_thresholds)),
        "fold_accuracies": fold_accuracies,
        "fold_thresholds": fold_thresholds,
    }
