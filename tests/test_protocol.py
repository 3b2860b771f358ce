"""The 10-fold verification protocol and the LFW pairs-file layouts."""

import os

import numpy as np
import pytest

from src.eval.pairs import PairsFormatError, drop_missing_images, read_pairs
from src.eval.protocol import accuracy_at, best_threshold, kfold_accuracy


def test_separable_scores_give_full_accuracy():
    issame = np.tile([True] * 30 + [False] * 30, 10)
    scores = np.where(issame, 0.8, 0.1) + np.random.default_rng(0).uniform(-0.05, 0.05, issame.size)
    result = kfold_accuracy(scores, issame, np.repeat(np.arange(10), 60))
    assert result["accuracy"] == 1.0 and result["std"] == 0.0
    assert 0.15 <= result["threshold"] < 0.75


def test_random_scores_give_chance():
    rng = np.random.default_rng(1)
    issame = rng.integers(0, 2, 6000).astype(bool)
    result = kfold_accuracy(rng.uniform(-1, 1, 6000), issame, np.repeat(np.arange(10), 600))
    assert result["accuracy"] == pytest.approx(0.5, abs=0.03)


def test_hand_worked_case():
    """Two folds. Fold 0: same .9 .6, different .5 .2; fold 1: same .7 .3, different .4 .1 ('same' iff score > t).
    Threshold from fold 1: t in [.1, .3) or [.4, .7) gets 3/4; the first grid point is t = 0.1. On fold 0 it
    calls .9 .6 .5 .2 all 'same': 2/4. Threshold from fold 0: t in [.5, .6) separates it; the first grid point is
    t = 0.5. On fold 1: .7 right, .3 wrong, .4 right, .1 right: 3/4. Mean 0.625, std 0.125, mean threshold 0.3."""
    scores = np.array([0.9, 0.6, 0.5, 0.2, 0.7, 0.3, 0.4, 0.1])
    issame = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    threshold, accuracy = best_threshold(scores[4:], issame[4:])
    assert accuracy == 0.75 and threshold == pytest.approx(0.1, abs=1e-9)
    threshold0, accuracy0 = best_threshold(scores[:4], issame[:4])
    assert accuracy0 == 1.0 and threshold0 == pytest.approx(0.5, abs=1e-9)
    assert accuracy_at(scores[:4], issame[:4], 0.1) == 0.5
    result = kfold_accuracy(scores, issame, folds)
    assert result["fold_accuracies"] == [0.5, 0.75]
    assert result["accuracy"] == 0.625 and result["std"] == 0.125
    assert result["threshold"] == pytest.approx(0.3, abs=1e-9)


def test_view2_layout_from_header(tmp_path):
    lines = ["2\t2", "A\t1\t2", "B\t1\t3", "A\t1\tB\t2", "C\t4\tD\t1", "E\t1\t2", "F\t2\t3", "E\t1\tF\t1", "G\t1\tH\t1"]
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    pairs = read_pairs(str(path), "root")
    assert pairs.folds.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert pairs.issame.tolist() == [True, True, False, False] * 2
    assert pairs.relpaths[:3] == ["A/A_0001.jpg", "A/A_0002.jpg", "B/B_0001.jpg"]
    assert pairs.paths[0] == os.path.join("root", "A/A_0001.jpg")
    assert pairs.relpaths[pairs.second[3]] == "D/D_0001.jpg"


def test_view1_layout_from_header(tmp_path):
    same = [f"P{i}\t1\t2" for i in range(20)]
    diff = [f"P{i}\t1\tQ{i}\t1" for i in range(20)]
    path = tmp_path / "dev.txt"
    path.write_text("\n".join(["20"] + same + diff) + "\n")
    pairs = read_pairs(str(path))
    assert pairs.folds.tolist() == [k for k in range(10) for _ in range(2)] * 2
    for k in range(10):
        assert pairs.issame[pairs.folds == k].sum() == 2 and (~pairs.issame[pairs.folds == k]).sum() == 2


@pytest.mark.parametrize(
    "lines,message",
    [
        (["2\t1", "A\t1\t2", "A\t1\tB\t2"], "header says 2 folds"),
        (["1\t1", "A\t1", "A\t1\tB\t2"], ":2: expected"),
        (["1\t1", "A\tx\t2", "A\t1\tB\t2"], ":2: image numbers"),
        (["ten"], ":1: header"),
        (["10", "A\t1\tB\t1"], "does not have that layout"),
    ],
)
def test_malformed_pairs_name_file_and_line(tmp_path, lines, message):
    path = tmp_path / "bad.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PairsFormatError, match=message) as err:
        read_pairs(str(path))
    assert "bad.txt" in str(err.value)


def test_real_lfw_fold_layouts(shared_dir):
    lfw = os.path.join(shared_dir, "data", "lfw")
    view2 = read_pairs(os.path.join(lfw, "pairs.txt"), os.path.join(lfw, "images_150"))
    assert len(view2.issame) == 6000 and np.bincount(view2.folds).tolist() == [600] * 10
    for k in range(10):
        fold = view2.issame[view2.folds == k]
        assert fold[:300].all() and not fold[300:].any()
    assert len(view2.relpaths) == 7701
    assert all(os.path.isfile(p) for p in view2.paths[:50])
    view1 = read_pairs(os.path.join(lfw, "pairsDevTest.txt"))
    assert len(view1.issame) == 1000 and np.bincount(view1.folds).tolist() == [100] * 10
    assert all(view1.issame[view1.folds == k].sum() == 50 for k in range(10))


def test_drop_missing_images_keeps_folds_and_reindexes(tmp_path):
    for rel in ["A/A_0001.jpg", "A/A_0002.jpg", "C/C_0001.jpg"]:
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(["1\t2", "A\t1\t2", "B\t1\t2", "A\t1\tB\t1", "A\t2\tC\t1"]) + "\n")
    pairs, missing = drop_missing_images(read_pairs(str(path), str(tmp_path)))
    assert missing == ["B/B_0001.jpg", "B/B_0002.jpg"]
    assert pairs.relpaths == ["A/A_0001.jpg", "A/A_0002.jpg", "C/C_0001.jpg"]
    assert pairs.first.tolist() == [0, 1] and pairs.second.tolist() == [1, 2]
    assert pairs.issame.tolist() == [True, False] and pairs.folds.tolist() == [0, 0]


def test_devtest_on_images_150_loses_one_different_pair(shared_dir):
    lfw = os.path.join(shared_dir, "data", "lfw")
    pairs, missing = drop_missing_images(
        read_pairs(os.path.join(lfw, "pairsDevTest.txt"), os.path.join(lfw, "images_150"))
    )
    assert missing == ["Betsy_Coffin/Betsy_Coffin_0001.jpg"]
    assert pairs.issame.sum() == 500 and (~pairs.issame).sum() == 499
    assert np.bincount(pairs.folds).tolist() == [100, 99] + [100] * 8  # line 585: different pair 84 -> fold 1
