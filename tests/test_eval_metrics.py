"""Every verification metric on synthetic scores whose answers were worked out by hand (in the comments)."""

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from src.eval.embed import fuse
from src.eval.metrics import roc_metrics, tar_at_far
from src.eval.pairs import PairSet
from src.eval.protocol import best_threshold, kfold_accuracy
from src.eval.verify import PROTOCOLS, evaluate_embeddings, fold_scores, metrics_from_scores, summary

# Five folds of one same and one different pair. Every score sits half a grid step (0.0025) off the threshold
# grid -1, -0.995, ..., 0.995, so no comparison depends on rounding.
SAME = np.array([0.9025, 0.8025, 0.7025, 0.6025, 0.3525])
DIFF = np.array([0.1025, 0.2025, 0.3025, 0.4025, 0.5025])
SCORES = np.concatenate([SAME, DIFF])
ISSAME = np.array([True] * 5 + [False] * 5)
FOLDS = np.array([0, 1, 2, 3, 4] * 2)


def test_kfold_accuracy_by_hand():
    # Held-out fold k, threshold = first grid value of best accuracy on the other four folds (score > t: same):
    #  k=0..2: the other folds' best range is [0.5025, 0.6025) (7 of 8 right) -> t = 0.505; fold k: both right.
    #  k=3: same {.9025 .8025 .7025 .3525}, diff {.1025 .2025 .3025 .5025}: 7 of 8 in [.3025, .3525) and in
    #       [.5025, .7025); the first is lower -> t = 0.305; fold 3: .6025 same (right), .4025 > t (wrong): 1/2.
    #  k=4: the rest separate perfectly in [.4025, .6025) -> t = 0.405; fold 4: .3525 (wrong), .5025 (wrong): 0.
    result = kfold_accuracy(SCORES, ISSAME, FOLDS)
    np.testing.assert_allclose(result["fold_thresholds"], [0.505, 0.505, 0.505, 0.305, 0.405], atol=1e-9)
    np.testing.assert_allclose(result["fold_accuracies"], [1.0, 1.0, 1.0, 0.5, 0.0])
    assert result["accuracy"] == pytest.approx(0.7)  # (1 + 1 + 1 + 0.5 + 0) / 5
    assert result["std"] == pytest.approx(0.4)  # sqrt((3 * 0.3^2 + 0.2^2 + 0.7^2) / 5)
    assert result["threshold"] == pytest.approx(0.445)  # (3 * 0.505 + 0.305 + 0.405) / 5


def test_best_threshold_on_all_pairs_by_hand():
    # t in [.5025, .6025): 4 same above, 5 different at or below -> 9/10; first grid value 0.505.
    threshold, accuracy = best_threshold(SCORES, ISSAME)
    assert threshold == pytest.approx(0.505)
    assert accuracy == pytest.approx(0.9)


def test_roc_metrics_by_hand():
    # Sorted scores: S S S S D D S D D D. AUC = P(same > different) = (4 * 5 + 3) / 25.
    # ROC corners (FAR, TAR): (0, .8), (.4, .8), (.4, 1). FAR = 1 - TAR at (0.2, 0.8): EER 0.2.
    # 5 different pairs resolve no FAR of 0.1 or below, so no TAR@FAR entry.
    result = roc_metrics(SCORES, ISSAME)
    assert result == pytest.approx({"auc": 0.92, "eer": 0.2})


def test_tar_at_far_by_hand():
    # 10 different pairs .05 .. .95, 5 same pairs. FAR <= 0.1 admits one different pair (.95): the threshold
    # can drop to .9 (accepting .99 and .9) before the next different pair (.85) -> TAR 2/5. FAR 0.2 admits
    # .85 too: accepting down to .8 -> 3/5.
    diff = np.arange(10) * 0.1 + 0.05
    same = np.array([0.99, 0.9, 0.8, 0.7, 0.6])
    scores = np.concatenate([same, diff])
    issame = np.array([True] * 5 + [False] * 10)
    result = roc_metrics(scores, issame)
    assert result["tar@far=0.1"] == pytest.approx(0.4)
    assert "tar@far=0.01" not in result  # 10 negatives cannot resolve FAR 1e-2
    fpr, tpr, _ = roc_curve(issame, scores)
    assert tar_at_far(fpr, tpr, 0.2) == pytest.approx(0.6)


def test_roc_metrics_lists_far_the_negatives_resolve():
    rng = np.random.default_rng(0)
    issame = np.array([True] * 100 + [False] * 1000)
    scores = np.concatenate([rng.normal(1, 0.3, 100), rng.normal(0, 0.3, 1000)])
    keys = set(roc_metrics(scores, issame))
    assert keys == {"auc", "eer", "tar@far=0.1", "tar@far=0.01", "tar@far=0.001"}


def test_fusion_modes():
    orig, flip = np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])
    np.testing.assert_array_equal(fuse(orig, flip, "orig"), [[1, 0]])
    np.testing.assert_array_equal(fuse(orig, flip, "concat"), [[1, 0, 0, 2]])
    np.testing.assert_array_equal(fuse(orig, flip, "sum"), [[1, 2]])
    with pytest.raises(ValueError, match="unknown fusion 'max'"):
        fuse(orig, flip, "max")


def two_fold_set():
    # Pair 0 = (a0, b0) in fold 0, pair 1 = (a1, b1) in fold 1.
    return PairSet(
        "synthetic",
        "",
        ["a0", "b0", "a1", "b1"],
        ["synthetic"] * 4,
        np.array([0, 2]),
        np.array([1, 3]),
        np.array([True, False]),
        np.array([0, 1]),
    )


FEATURES = np.array([[2.0, 2.0], [1.0, 3.0], [2.0, 1.0], [0.0, 1.0]])


def test_mean_subtraction_by_hand():
    # Fold 0 held out: mu = mean(a1, b1) = (1, 1): a0 - mu = (1, 1), b0 - mu = (0, 2) -> cos = 1/sqrt(2);
    #                  pair 1 under that mean: (1, 0) and (-1, 0) -> cos = -1.
    # Fold 1 held out: mu = mean(a0, b0) = (1.5, 2.5): a1 - mu = (.5, -1.5), b1 - mu = (-1.5, -1.5)
    #                  -> cos = 1.5 / sqrt(2.5 * 4.5) = 1/sqrt(5); pair 0 under it: (.5, -.5), (-.5, .5) -> -1.
    rows, own = fold_scores(FEATURES, two_fold_set(), subtract_mean=True)
    np.testing.assert_allclose(rows, [[1 / np.sqrt(2), -1.0], [-1.0, 1 / np.sqrt(5)]], atol=1e-12)
    np.testing.assert_allclose(own, [1 / np.sqrt(2), 1 / np.sqrt(5)], atol=1e-12)
    # Without it: cos((2, 2), (1, 3)) = 8 / sqrt(8 * 10), cos((2, 1), (0, 1)) = 1 / sqrt(5).
    rows, own = fold_scores(FEATURES, two_fold_set(), subtract_mean=False)
    np.testing.assert_allclose(own, [8 / np.sqrt(80), 1 / np.sqrt(5)], atol=1e-12)


def test_mean_subtraction_thresholds_use_the_centred_training_scores():
    # Fold 0 held out: the only training pair (different) scores -1 -> every threshold >= -1 is right on it,
    # the first grid value is -1.0; pair 0 (1/sqrt(2) > -1) is called same: right. Fold 1 held out: training
    # pair 0 (same) scores -1 -> it is right only for t < -1: none on the grid; best is the first, -1.0, at
    # accuracy 0; pair 1 (1/sqrt(5) > -1) is called same: wrong.
    pair_set = two_fold_set()
    rows, own = fold_scores(FEATURES, pair_set, subtract_mean=True)
    metrics = metrics_from_scores(rows, own, pair_set)
    assert metrics["kfold"]["fold_thresholds"] == pytest.approx([-1.0, -1.0])
    assert metrics["kfold"]["fold_accuracies"] == [1.0, 0.0]


def test_every_metric_is_labelled_with_its_protocol():
    pair_set = PairSet(
        "synthetic",
        "",
        [f"i{k}" for k in range(20)],
        ["synthetic"] * 20,
        np.arange(0, 20, 2),
        np.arange(1, 20, 2),
        ISSAME,
        FOLDS,
    )
    rng = np.random.default_rng(0)
    orig, flip = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    metrics, scores = evaluate_embeddings(orig, flip, pair_set)
    assert set(metrics) == set(scores) == {"orig", "concat", "sum"}
    for mode in metrics:
        assert set(metrics[mode]) == {"kfold", "best_threshold_all_pairs", "roc"}
        for name, block in metrics[mode].items():
            assert block["protocol"] == PROTOCOLS[name]
    concat = metrics["concat"]
    assert summary(concat) == {
        "accuracy": concat["kfold"]["accuracy"],
        "std": concat["kfold"]["std"],
        "threshold": concat["kfold"]["threshold"],
        "accuracy_best_threshold": concat["best_threshold_all_pairs"]["accuracy"],
        "auc": concat["roc"]["auc"],
        "eer": concat["roc"]["eer"],
    }
    np.testing.assert_allclose(
        scores["sum"][0],
        np.dot(orig[0] + flip[0], orig[1] + flip[1])
        / np.linalg.norm(orig[0] + flip[0])
        / np.linalg.norm(orig[1] + flip[1]),
    )
