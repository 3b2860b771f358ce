"""Faults met by eval.py (see the fault table, docs/faults.md): an output folder that does not exist yet,
a zero-byte image among the pairs."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from tiny_training import TINY_EVAL, eval_args

from src.data.alignment import template_for
from src.data.digits import prepare_digits
from src.eval.evaluation import evaluate
from src.eval.pair_images import PairImageError, load_pair_images
from src.eval.pairs import read_pairs
from src.eval.sources import read_pair_set
from src.model_utils.config import flow, load_config
from src.network import build_backbone
from tests.face_data import random_image, write_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = TINY_EVAL + ["--eval_plots=true"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return prepare_digits(str(tmp_path_factory.mktemp("digits")), (32, 32), pairs_per_fold=8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    net = build_backbone("sphere4", embedding_size=8, image_size=(32, 32), width=0.125)
    path = str(tmp_path_factory.mktemp("ckpt") / "net.ckpt")
    ms.save_checkpoint(net, path)
    return path


def run_eval(digits, model, output, *extra):
    return evaluate(load_config(TINY + eval_args(digits, model, output, *extra)))


def test_eval_output_in_a_folder_that_does_not_exist_yet(digits, checkpoint, tmp_path):
    output = tmp_path / "new" / "deeper" / "r.json"
    run_eval(digits, checkpoint, output)
    record = json.loads(output.read_text())
    files = record["models"][checkpoint]["files"]
    assert all(os.path.getsize(path) > 0 for path in files.values())


def test_zero_byte_image_among_the_pairs_is_named(digits, checkpoint, tmp_path):
    pair_set = read_pair_set(digits["eval_pairs"], "auto", digits["eval_root"], ".png")
    victim = os.path.join(digits["eval_root"], pair_set.relpaths[0])
    saved = Path(victim).read_bytes()
    try:
        Path(victim).write_bytes(b"")
        with pytest.raises(
            PairImageError,
            match=f"{pair_set.where[0]}: cannot decode image: {victim}: the file is "
            r"empty \(0 bytes\)",
        ):
            run_eval(digits, checkpoint, tmp_path / "r.json")
    finally:
        Path(victim).write_bytes(saved)


def test_infer_folder_output_in_a_new_folder_exits_0(digits, checkpoint, tmp_path):
    """infer.py run as a script: the --out folder is created before the embedding, and the run exits 0."""
    images = os.path.join(digits["eval_root"], min(os.listdir(digits["eval_root"])))
    out = tmp_path / "new" / "emb.npy"
    result = subprocess.run(
        [
            sys.executable,
            "infer.py",
            "--folder",
            images,
            "--out",
            str(out),
            "--aligned",
            *TINY_EVAL,
            f"--ckpt_file={checkpoint}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    embeddings = np.load(out)
    assert len(embeddings) == len(os.listdir(images)) and np.isfinite(embeddings).all()
    assert out.with_suffix(".txt").exists()


def test_check_dataset_report_in_a_new_folder(digits, tmp_path):
    from tools.check_dataset import main as check_main

    report = tmp_path / "new" / "report.json"
    assert (
        check_main(
            ["--list", digits["train_list"], "--root", digits["train_root"], "--no_decode", "--report", str(report)]
        )
        == 0
    )
    assert json.loads(report.read_text())["ok"] is True


def test_folder_evaluation_skips_checkpoints_set_aside_as_diverged(digits, checkpoint, tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    Path(folder / "step_00000004.ckpt").write_bytes(Path(checkpoint).read_bytes())
    net = build_backbone("sphere4", embedding_size=8, image_size=(32, 32), width=0.125)
    for param in net.trainable_params():
        param.set_data(ms.Tensor(np.full(param.shape, np.nan, np.float32)))
    ms.save_checkpoint(net, str(folder / "step_00000006.diverged.ckpt"))
    run_eval(digits, str(folder), tmp_path / "r.json")
    assert list(json.loads((tmp_path / "r.json").read_text())["models"]) == [str(folder / "step_00000004.ckpt")]


def test_images_the_detector_skipped_leave_with_their_pairs_and_are_all_named(digits, checkpoint, tmp_path, caplog):
    """Detect-then-evaluate: the landmark file lacks two images (no face found); their pairs are skipped, every one
    is named, and the JSON records them as it records missing images."""
    pair_set = read_pair_set(digits["eval_pairs"], "auto", digits["eval_root"], ".png")
    lacking = pair_set.relpaths[:2]
    points = "\t".join(f"{v:.2f}" for v in template_for((32, 32)).ravel())
    landmarks = tmp_path / "landmarks.txt"
    landmarks.write_text("".join(f"{p}\t{points}\n" for p in pair_set.relpaths[2:]), encoding="utf-8")
    output = tmp_path / "r.json"
    with caplog.at_level(logging.WARNING):
        target = {"pairs": digits["eval_pairs"], "root": digits["eval_root"], "image_ext": ".png"}
        run_eval(digits, checkpoint, output, f"--val_targets={flow([dict(target, landmarks=str(landmarks))])}")
    for relpath, where in zip(lacking, pair_set.where):
        assert f"{landmarks}: no landmarks for image {relpath} (used at {where}): its pairs are skipped" in caplog.text
    record = json.loads(output.read_text())["pair_set"]
    assert record["images_without_landmarks"] == lacking and record["missing_images"] == []
    usable = [p not in lacking for p in pair_set.relpaths]
    kept = sum(usable[a] and usable[b] for a, b in zip(pair_set.first, pair_set.second))
    assert record["pairs"] == kept < len(pair_set)


def test_raw_photos_without_landmarks_get_a_warning_offering_detection(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for name in ("Ann", "Bob"):
        write_image(str(tmp_path / name / f"{name}_0001.jpg"), random_image(rng, 150, 150))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\t1\nAnn\t1\t1\nAnn\t1\tBob\t1\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        load_pair_images(read_pairs(str(pairs), str(tmp_path)), (112, 96))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "2 of 2 images are more than 1.5x the 96x112 input on a side" in warnings[0]
    assert "Ann/Ann_0001.jpg is 150x150" in warnings[0] and "tools/detect_landmarks.py" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_pair_images(read_pairs(str(pairs), str(tmp_path)), (112, 112))
    assert not caplog.records
