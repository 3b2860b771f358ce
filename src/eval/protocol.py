"""The LFW verification protocol: 10 folds, the threshold chosen on 9 and applied to the 10th."""
import numpy as np
from sklearn.model_selection import PredefinedSplit

# The threshold grid of the SphereFace evaluation (cosine scores).
THRESHOLDS = np.arange(-1.0, 1.0, 0.005)


def accuracy_at(scores, issame, threshold):
    """Fraction of pairs classified right when score > threshold means 'same'."""
    return float(np.mean((scores > threshold) == issame))


def best_threshold(scores, issame, thresholds=THRESHOLDS):
    """The threshold of highest accuracy (the first one on ties) and that accuracy."""
    accuracies = np.array([accuracy_at(scores, issame, t) for t in thresholds])
    best = int(np.argmax(accuracies))
    return float(thresholds[best]), float(accuracies[best])


def kfold_accuracy(scores, issame, folds, thresholds=THRESHOLDS):
    """For each fold k: the best threshold on the other folds, the accuracy on fold k.

    Returns {'accuracy', 'std', 'threshold' (means over folds), 'fold_accuracies', 'fold_thresholds'}.
    """
    scores, issame = np.asarray(scores, np.float64), np.asarray(issame, bool)
    fold_accuracies, fold_thresholds = [], []
    for train_idx, test_idx in PredefinedSplit(np.asarray(folds)).split():
        threshold, _ = best_threshold(scores[train_idx], issame[train_idx], thresholds)
        fold_thresholds.append(threshold)
        fold_accuracies.append(accuracy_at(scores[test_idx], issame[test_idx], threshold))
    return {"accuracy": float(np.mean(fold_accuracies)), "std": float(np.std(fold_accuracies)),
            "threshold": float(np.mean(fold_thresholds)), "fold_accuracies": fold_accuracies,
            "fold_thresholds": fold_thresholds}
