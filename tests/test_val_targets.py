"""Several validation sets: val_targets in a short training run (each logged, best.ckpt by val_select), the same
list in eval.py (one table, thresholds in the JSON), the schema check of the nested list, and bad pair sets."""

import json
import pickle

import numpy as np
import pytest
from tiny_training import digits_subset, tiny_args

from src.eval.evaluation import evaluate
from src.eval.pair_images import PairImageError, load_pair_images
from src.eval.pairs import PairsFormatError, read_pairs
from src.eval.sources import read_pair_set
from src.eval.targets import selection_score, targets_from_config
from src.eval.thresholds import deployable_thresholds, threshold_at_far
from src.model_utils.config import ConfigError, load_config
from src.train.checkpoint import read_checkpoint
from src.train.loop import check_train_config, train
from src.train.metrics_log import read_metrics
from src.train.run_state import RunState


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The digits data plus a second pair set: the first 40 pairs of each kind as a 'label path1 path2' list."""
    folder = tmp_path_factory.mktemp("digits")
    paths = digits_subset(str(folder))
    pair_set = read_pairs(paths["eval_pairs"], paths["eval_root"], ".png")
    lines = []
    same, different = np.flatnonzero(pair_set.issame)[:40], np.flatnonzero(~pair_set.issame)[:40]
    for s, d in zip(same, different):
        for i in (s, d):
            lines.append(
                f"{int(pair_set.issame[i])} {pair_set.relpaths[pair_set.first[i]]} "
                f"{pair_set.relpaths[pair_set.second[i]]}"
            )
    (folder / "small_list.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    targets = (
        f"[{{name: digits, pairs: {paths['eval_pairs']}, root: {paths['eval_root']}, image_ext: .png}}, "
        f"{{name: small, pairs: {folder / 'small_list.txt'}, root: {paths['eval_root']}}}]"
    )
    return dict(paths, targets=targets, small_list=str(folder / "small_list.txt"))


def test_two_targets_in_training_each_logged_best_by_the_rule(data, tmp_path):
    train(
        load_config(
            tiny_args(
                data,
                str(tmp_path),
                max_steps=20,
                save_interval=100,
                eval_interval=10,
                val_targets=data["targets"],
                val_select="small",
            )
        )
    )
    series = read_metrics(str(tmp_path / "metrics.csv"))
    for name in ("digits", "small"):
        for metric in ("accuracy", "std", "auc", "eer"):
            assert series[f"val/{name}/{metric}"][0] == [10, 20]
    assert series["val/accuracy"] == series["val/small/accuracy"]  # val_select: small
    assert series["val/digits/accuracy"][1] != series["val/small/accuracy"][1]
    small = series["val/small/accuracy"][1]
    best = RunState.from_entries(read_checkpoint(str(tmp_path / "checkpoints" / "best.ckpt")))
    assert best.best_accuracy == max(small) and best.step == [10, 20][int(np.argmax(small))]
    log = open(tmp_path / "log_rank0.txt", encoding="utf-8").read()
    assert "validation digits: accuracy" in log and "validation small: accuracy" in log


def test_selection_rule():
    assert selection_score({"a": 0.8, "b": 0.6}, "mean") == pytest.approx(0.7)
    assert selection_score({"a": 0.8, "b": 0.6}, "b") == 0.6
    assert selection_score({"a": 0.8, "b": None}, "a") is None


def test_bad_target_settings_name_the_key(data, tmp_path):
    with pytest.raises(ConfigError, match=r"'val_targets\[1\]\.fromat': unknown field"):
        load_config(tiny_args(data, str(tmp_path), val_targets="[a.bin, {pairs: b.bin, fromat: bin}]"))
    with pytest.raises(ConfigError, match=r"'val_targets\[0\]\.pairs': a value is required"):
        load_config(tiny_args(data, str(tmp_path), val_targets="[{name: lfw}]"))
    with pytest.raises(ConfigError, match="'val_select': 'lfw' is neither 'mean' nor a target name"):
        check_train_config(load_config(tiny_args(data, str(tmp_path), val_targets=data["targets"], val_select="lfw")))
    both = r"'val_pairs' and 'val_targets' are both set in the command line: .*\[\{pairs: "
    with pytest.raises(ConfigError, match=both):
        check_train_config(
            load_config(tiny_args(data, str(tmp_path), val_targets=data["targets"], val_pairs=data["eval_pairs"]))
        )
    with pytest.raises(ConfigError, match="two targets are named 'a'"):
        check_train_config(load_config(tiny_args(data, str(tmp_path), val_targets="[x/a.bin, y/a.bin]")))


def test_eval_prints_one_table_and_writes_thresholds(data, tmp_path, capsys):
    import mindspore as ms

    from src.network import build_backbone

    net = build_backbone("sphere4", embedding_size=8, image_size=(32, 32), width=0.125)
    ms.save_checkpoint(net, str(tmp_path / "net.ckpt"))
    output = tmp_path / "multi.json"
    evaluate(
        load_config(
            [
                "--device_target=CPU",
                "--config_path=",
                "--backbone=sphere4",
                "--backbone_width=0.125",
                "--embedding_size=8",
                "--image_size=[32, 32]",
                f"--ckpt_file={tmp_path / 'net.ckpt'}",
                f"--val_targets={data['targets']}",
                f"--eval_output={output}",
                "--eval_plots=false",
            ]
        )
    )
    out = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("target"))
    assert "10-fold acc +- std" in out[header] and "TAR@FAR=1e-3" in out[header] and "TAR@FAR=1e-4" in out[header]
    rows = {line.split()[0]: line.split() for line in out[header + 2 : header + 4]}
    record = json.load(open(output, encoding="utf-8"))
    entry = record["models"][str(tmp_path / "net.ckpt")]
    assert set(entry["targets"]) == {"digits", "small"} and record["targets"]["small"]["pairs"] == 80
    for name, row in rows.items():
        metrics = entry["targets"][name]["metrics"]["concat"]
        assert row[1] == str(record["targets"][name]["pairs"])
        kfold = metrics["kfold"]
        assert row[2] == f"{100 * kfold['accuracy']:.2f}" and row[4] == f"{100 * kfold['std']:.2f}"
        assert row[5] == f"{metrics['roc']['auc']:.5f}"
        assert row[7:] == ["-", "-"]  # 300 and 40 different pairs resolve no FAR of 1e-3 or below
        thresholds = entry["targets"][name]["thresholds"]
        assert thresholds["far1e-3"] is None and thresholds["fusion"] == "concat"
        assert thresholds["best_acc"]["threshold"] == metrics["best_threshold_all_pairs"]["threshold"]
        assert thresholds["best_acc"]["accuracy"] == pytest.approx(metrics["best_threshold_all_pairs"]["accuracy"])
    mean = np.mean([entry["targets"][n]["metrics"]["concat"]["kfold"]["accuracy"] for n in rows])
    assert entry["score"] == pytest.approx(mean)
    assert any(line.startswith("mean") and f"{100 * mean:.2f}" in line for line in out)


def test_threshold_at_far_by_hand():
    """2000 different pairs scored 0.0000 .. 0.1999 (step 1e-4): at FAR 1e-3, floor(2) = 2 false accepts are
    allowed, so the threshold is the 3rd highest, 0.1997 (0.1998 and 0.1999 lie above it)."""
    negatives = np.arange(2000) / 10000.0
    scores = np.concatenate([negatives, [0.5, 0.1998, 0.05]])
    issame = np.concatenate([np.zeros(2000, bool), np.ones(3, bool)])
    assert threshold_at_far(scores, issame, 1e-3) == pytest.approx(0.1997)
    assert threshold_at_far(scores, issame, 1e-4) is None  # 2000 x 1e-4 < 1
    table = deployable_thresholds(scores, issame, 0.3, "orig")
    assert table["far1e-3"]["far"] == pytest.approx(2 / 2000) and table["far1e-3"]["tar"] == pytest.approx(2 / 3)
    assert table["best_acc"] == {
        "threshold": 0.3,
        "tar": pytest.approx(1 / 3),
        "far": 0.0,
        "accuracy": pytest.approx(2001 / 2003),
    }
    assert table["far1e-4"] is None


def test_pairs_without_different_pairs_name_the_file(data, tmp_path):
    lines = [line for line in open(data["small_list"], encoding="utf-8") if line.startswith("1 ")]
    path = tmp_path / "same_only.txt"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(PairsFormatError, match=f"{path}: all 40 pairs are same-identity pairs.*no different"):
        read_pair_set(str(path), root=data["eval_root"])


def test_bin_with_images_of_another_size_names_the_file(data, tmp_path):
    import cv2

    small = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))[1].tobytes()
    large = cv2.imencode(".png", np.zeros((40, 32, 3), np.uint8))[1].tobytes()
    path = tmp_path / "mixed.bin"
    with open(path, "wb") as f:
        pickle.dump(([small] * 19 + [large], [True, False] * 5), f)
    with pytest.raises(PairImageError, match=f"{path}: image #19 .*a 40x32 image in a set of 32x32 images"):
        load_pair_images(read_pair_set(str(path)), (32, 32))


def test_single_set_keys_still_work(data):
    cfg = load_config(["--config_path=", f"--eval_pairs={data['eval_pairs']}"])
    (target,) = targets_from_config(cfg)
    assert target.name is None and target.label == "pairs" and target.pairs == data["eval_pairs"]


def test_unnamed_targets_among_several_are_named_after_their_files():
    cfg = load_config(["--config_path=", "--val_targets=[x/lfw.bin, {name: small, pairs: y/list.txt}]"])
    assert [target.name for target in targets_from_config(cfg)] == ["lfw", "small"]
