"""Threshold-free verification metrics from scikit-learn's ROC: AUC, EER and TAR at fixed FAR."""
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

FARS = (1e-1, 1e-2, 1e-3, 1e-4)


def tar_at_far(fpr: np.ndarray, tpr: np.ndarray, far: float) -> float:
    """The highest true accept rate whose false accept rate is <= ``far``."""
    allowed = fpr <= far
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """The error rate where the false accept rate equals the false reject rate (linear interpolation)."""
    fnr = 1.0 - tpr
    i = int(np.nonzero(fpr >= fnr)[0][0])
    if i == 0:
        return float(fpr[0])
    d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    w = d0 / (d0 - d1)
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def roc_metrics(scores: np.ndarray, issame: np.ndarray) -> dict:
    """{'auc', 'eer', 'tar@far=...'} for every FAR the number of negative pairs can resolve (>= 1 / FAR)."""
    issame = np.asarray(issame, bool)
    fpr, tpr, _ = roc_curve(issame, scores)
    out = {"auc": float(roc_auc_score(issame, scores)), "eer": equal_error_rate(fpr, tpr)}
    negatives = int((~issame).sum())
    for far in FARS:
        if negatives * far >= 1:
            out[f"tar@far={far:g}"] = tar_at_far(fpr, tpr, far)
    return out
