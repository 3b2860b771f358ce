"""Thresholds a deployment can use, from the cosine scores of a pair set: at a false accept rate (FAR 1e-3,
1e-4) and of best accuracy. A pair is called 'same' when its cosine is above the threshold, as everywhere here.

At FAR f with n different-identity pairs, k = floor(f n) false accepts are allowed: the threshold is the
(k+1)-th highest different-pair score, so at most k of them lie above it (fewer when scores tie). With
f n < 1 the set cannot resolve that FAR and the threshold is None.
"""

import numpy as np

from src.eval.protocol import accuracy_at
from src.eval.threshold_rules import RULE_TEXT, RULES


def threshold_at_far(scores, issame, far):
    """The lowest threshold letting at most floor(far x different pairs) different pairs score above it, or None
    when the set has fewer than 1 / far different pairs."""
    negatives = np.sort(np.asarray(scores, np.float64)[~np.asarray(issame, bool)])[::-1]
    if len(negatives) * far < 1:
        return None
    return float(negatives[int(np.floor(far * len(negatives)))])


def rates_at(scores, issame, threshold):
    """{'tar', 'far', 'accuracy'} when 'same' means score > threshold."""
    scores, issame = np.asarray(scores, np.float64), np.asarray(issame, bool)
    accepted = scores > threshold
    return {
        "tar": float(accepted[issame].mean()),
        "far": float(accepted[~issame].mean()),
        "accuracy": accuracy_at(scores, issame, threshold),
    }


def deployable_thresholds(scores, issame, best_accuracy_threshold, fusion):
    """{'rule', 'fusion', 'far1e-3', 'far1e-4', 'best_acc'}: each a {'threshold', 'tar', 'far', 'accuracy'} (or
    None when the set cannot resolve it) for the cosine scores of ``fusion``."""
    out = {"rule": RULE_TEXT, "fusion": fusion}
    for name, far in RULES.items():
        threshold = best_accuracy_threshold if far is None else threshold_at_far(scores, issame, far)
        out[name] = None if threshold is None else {"threshold": threshold, **rates_at(scores, issame, threshold)}
    return out
