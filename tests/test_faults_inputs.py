"""Inputs that are quietly wrong and messages that must name the real cause (see the fault table, docs/faults.md):
images a plain list resizes badly, a warmup longer than the run, too few samples for a batch, a list written on
Windows, the dataset checker's lines."""

import logging

import numpy as np
import pytest
from tiny_training import digits_subset, tiny_args

from src.data.check import DataCheckError, load_training_list
from src.data.sampler import steps_per_epoch
from src.model_utils.config import load_config
from src.train import loop
from tests.face_data import random_image, write_image
from tools.check_dataset import main as check_main


@pytest.fixture
def root(tmp_path):
    rng = np.random.default_rng(0)
    for relpath, (height, width) in {
        "a/1.png": (112, 96),
        "a/2.png": (1, 1),
        "b/3.png": (150, 150),
        "b/4.png": (150, 150),
    }.items():
        write_image(str(tmp_path / "root" / relpath), random_image(rng, height, width))
    return str(tmp_path / "root")


def write_list(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_aligned_list_of_tiny_or_raw_images_warns_once_with_counts(root, tmp_path, caplog):
    listing = write_list(tmp_path / "list.txt", ["a/1.png 0", "a/2.png 0", "b/3.png 1", "b/4.png 1"])
    with caplog.at_level(logging.WARNING):
        load_training_list(listing, "plain", root, image_size=(112, 96))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "1 of the 4 images without landmarks are enlarged more than 2x to the 96x112 input" in warnings[0]
    assert "list.txt:2: " in warnings[0] and "a/2.png is 1x1" in warnings[0]
    assert "3 of the 4 images without landmarks have another aspect than the 96x112 input" in warnings[0]
    assert "tools/detect_landmarks.py" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_training_list(write_list(tmp_path / "ok.txt", ["a/1.png 0"]), "plain", root, image_size=(112, 96))
    assert not caplog.records


def test_warmup_longer_than_the_run_warns_at_start(tmp_path, caplog, monkeypatch):
    """The warning comes before the network is built (the build is cut short here: the start is what counts)."""

    def stop(*args):
        raise RuntimeError("stopped after the start")

    monkeypatch.setattr(loop, "build_training", stop)
    data = digits_subset(str(tmp_path / "digits"))
    with caplog.at_level(logging.WARNING), pytest.raises(RuntimeError, match="stopped after the start"):
        loop.train(load_config(tiny_args(data, str(tmp_path / "run"), max_steps=2, warmup_steps=40)))
    assert "warmup_steps=40 is not shorter than the run (2 steps): the learning rate never reaches lr=0.05" in (
        caplog.text
    )


def test_too_few_samples_for_a_batch_names_the_batch_that_fits():
    with pytest.raises(
        ValueError, match=r"9 samples .* fewer than one batch of 32 .* the largest batch size that fits is 9"
    ):
        steps_per_epoch(9, 32)
    with pytest.raises(ValueError, match="the largest batch size that fits is 5"):
        steps_per_epoch(9, 32, num_shards=2)


def test_windows_backslashes_in_a_list_are_named_once(root, tmp_path, caplog):
    listing = write_list(tmp_path / "list.txt", ["a\\1.png 0", "b\\3.png 1", "b\\4.png 1", "a/9.png 0"])
    with pytest.raises(DataCheckError) as caught:
        load_training_list(listing, "plain", root)
    text = str(caught.value)
    assert "list.txt:1: 3 image path(s) contain '\\' and are not found" in text
    assert "a list written on Windows? separate folders with '/'" in text
    assert text.count("image not found") == 1 and "a/9.png" in text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert check_main(["--list", listing, "--root", root, "--no_decode", "--report", str(tmp_path / "r.json")]) == 1
    assert "list.txt:1: 3 image path(s) contain '\\' and are not found" in caplog.text


def test_check_dataset_logs_file_and_line_not_a_dict(root, tmp_path, caplog, capsys):
    listing = write_list(tmp_path / "list.txt", ["a/1.png 0", "a/9.png 0", "b/3.png x"])
    with caplog.at_level(logging.INFO):
        assert check_main(["--list", listing, "--root", root, "--workers", "1"]) == 1
    assert f"{listing}:2: {root}/a/9.png: image not found" in caplog.text
    assert f"{listing}:3: label 'x' is not an integer" in caplog.text
    assert "{'" not in caplog.text and "report written" not in caplog.text
    assert '"ok": false' in capsys.readouterr().out
