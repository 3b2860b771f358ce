"""Faults of the training data, each stopped with a message naming the file and line (see the fault table,
docs/faults.md): zero-byte images, an empty list, implausible landmarks."""

import logging
import os

import numpy as np
import pytest

from src.data.check import DataCheckError, load_training_list
from src.data.dataset import FaceSource
from src.data.image_header import image_size
from src.data.image_io import ImageDecodeError, load_rgb
from src.data.samples import Sample
from tests.face_data import random_image, write_image
from tools.check_dataset import main as check_main

GOOD = "10 12 28 12 19 20 12 28 26 28"  # eyes at y 12, mouth at y 28 in a 40x40 image


@pytest.fixture
def root(tmp_path):
    rng = np.random.default_rng(0)
    for relpath in ("a/1.png", "a/2.png", "b/3.jpg", "b/4.png"):
        write_image(str(tmp_path / "root" / relpath), random_image(rng))
    (tmp_path / "root" / "b" / "empty.jpg").write_bytes(b"")
    return tmp_path / "root"


def write_list(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_zero_byte_image_is_named_when_decoded(root):
    with pytest.raises(ImageDecodeError, match=r"cannot decode image: .*empty.jpg: the file is empty \(0 bytes\)"):
        load_rgb(str(root / "b" / "empty.jpg"))


def test_zero_byte_image_stops_the_start_of_run_check_with_file_and_line(root, tmp_path):
    listing = write_list(tmp_path / "list.txt", ["a/1.png 0", "b/empty.jpg 1", "b/3.jpg 1"])
    with pytest.raises(DataCheckError, match=r"list.txt:2: image file is empty \(0 bytes\): .*b/empty.jpg"):
        load_training_list(listing, "plain", str(root))


def test_zero_byte_image_mid_run_is_skipped_and_named(root, caplog):
    """An image emptied after the start (a copy still running) is logged by name and replaced."""
    samples = [Sample(str(root / "b" / "empty.jpg"), 0, None, 1), Sample(str(root / "a" / "1.png"), 1, None, 2)]
    source = FaceSource(samples, (32, 32), max_bad_fraction=0.5)
    with caplog.at_level(logging.WARNING):
        image, label = source.image(0)
    assert image.shape == (32, 32, 3) and int(label) == 1
    assert source.bad_paths == [str(root / "b" / "empty.jpg")]
    assert "the file is empty (0 bytes)" in caplog.text


def test_check_dataset_on_an_empty_list_fails(tmp_path, caplog):
    listing = write_list(tmp_path / "empty.txt", ["# only a comment"])
    with caplog.at_level(logging.INFO):
        assert check_main(["--list", listing, "--report", str(tmp_path / "r.json")]) == 1
    assert "the list has no images" in caplog.text and "has ERRORS" in caplog.text


@pytest.mark.parametrize(
    "landmarks, problem",
    [
        ("nan 12 28 12 19 20 12 28 26 28", "landmarks are not all finite numbers"),
        ("10 12 99999 12 19 20 12 28 26 28", r"landmark \(99999, 12\) is outside the 40x40 image"),
        ("10 28 28 28 19 20 12 12 26 12", "the eyes .* are not above the mouth"),
    ],
)
def test_implausible_landmarks_stop_the_start_of_run_check(root, tmp_path, landmarks, problem):
    listing = write_list(tmp_path / "list.txt", [f"a/1.png 0 {GOOD}", f"a/2.png 0 {landmarks}", f"b/3.jpg 1 {GOOD}"])
    with pytest.raises(DataCheckError, match=f"list.txt:2: .*a/2.png: {problem}"):
        load_training_list(listing, "sphereface", str(root))


def test_landmarks_just_outside_the_border_pass(root, tmp_path):
    """A face cut by the border: a point 2 px outside a 40 px image is within the 10 % margin."""
    listing = write_list(tmp_path / "list.txt", [f"a/1.png 0 {GOOD}", "b/3.jpg 1 -2 12 28 12 19 20 12 28 41 28"])
    samples, num_classes = load_training_list(listing, "sphereface", str(root))
    assert len(samples) == 2 and num_classes == 2


def test_image_size_from_headers(root):
    for relpath in ("a/1.png", "b/3.jpg"):
        assert image_size(str(root / relpath)) == (40, 40)
    assert os.path.getsize(root / "b" / "empty.jpg") == 0 and image_size(str(root / "b" / "empty.jpg")) is None


def test_config_of_an_older_version_gets_the_new_form(tmp_path, caplog):
    from src.model_utils.config import ConfigError, load_config

    old = tmp_path / "old.yaml"
    old.write_text("per_batch_size: 48\n", encoding="utf-8")
    assert load_config(["--config_path", str(old)]).batch_size == 48
    assert f"config key 'per_batch_size' in {old}: retired, read as 'batch_size: 48'" in caplog.text
    old.write_text("lr_steps: [16000, 24000]\n", encoding="utf-8")
    with pytest.raises(
        ConfigError,
        match=r"write 'lr_milestones: \[16000, 24000\]' instead \(lr_milestones counts "
        r"optimisation steps, not epochs\)",
    ):
        load_config(["--config_path", str(old)])
    old.write_text("plot_features: true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'plot_features' .* delete it"):
        load_config(["--config_path", str(old)])
    old.write_text("keep_checkpoint: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown config key 'keep_checkpoint' .*did you mean 'keep_checkpoints'"):
        load_config(["--config_path", str(old)])


@pytest.mark.usefixtures("restore_logging")
def test_log_file_on_a_full_disk_warns_once_and_keeps_the_console(tmp_path, capsys):
    """A worker whose disk is full while rank 0's is not: log_rank1.txt links to /dev/full (ENOSPC on write)."""
    from src.model_utils.logger import setup_logging

    os.symlink("/dev/full", tmp_path / "log_rank1.txt")
    log = setup_logging(str(tmp_path), rank=1)
    for step in range(3):
        log.info("step %d", step)
    captured = capsys.readouterr()
    assert captured.err.count("cannot write the log file") == 1 and "No space left on device" in captured.err
    assert "Traceback" not in captured.err and "step 2" in captured.out


def test_image_folder_gone_mid_run_stops_naming_it(root):
    """The image folder disappears (a network disk unmounted) after the start-of-run check: the pipeline stops at
    once with the folder named, raised as itself rather than inside MindSpore's RuntimeError."""
    import shutil

    from src.data.dataset import ImagesUnreachable, batches, create_train_dataset

    samples = [Sample(str(root / "a" / name), 0, None, n) for n, name in enumerate(("1.png", "2.png"), 1)]
    samples += [Sample(str(root / "b" / "3.jpg"), 1, None, 3), Sample(str(root / "b" / "4.png"), 1, None, 4)]
    dataset, _, source = create_train_dataset(samples, (32, 32), 2, num_workers=1, max_bad_fraction=0.9)
    shutil.rmtree(root / "b")
    with pytest.raises(ImagesUnreachable, match=f"the folder {root / 'b'} of training image .* is gone .*--resume"):
        for _ in batches(dataset, source):
            pass
