"""tools/make_list.py on real LFW: the View 1 DevTrain people with >= 4 images (430 identities, 4,964 images),
a small identity tree of those people (symlinks in tmp_path) read both as a folder and as the written list,
and a training run of a few steps on that list with one corrupt JPEG, whose skip reaches the final log line."""

import os

import numpy as np
import pytest

from src.data.landmarks import read_landmarks
from src.data.readers import read_training_list
from src.model_utils.config import load_config
from tests.face_data import (  # noqa: F401
    LFW_DEVTRAIN,
    LFW_IMAGES,
    LFW_LANDMARKS,
    devtrain_people,
    link_tree,
    read_class_map,
    write_corrupt_jpeg,
)
from tools.make_list import main as make_list_main


def test_lfw_devtrain_list_with_landmarks(tmp_path):
    people = devtrain_people(min_images=4)
    out = str(tmp_path / "lfw_devtrain4.txt")
    assert (
        make_list_main(
            [
                "--root",
                LFW_IMAGES,
                "--people",
                LFW_DEVTRAIN,
                "--min_images",
                "4",
                "--landmarks",
                LFW_LANDMARKS,
                "--output",
                out,
            ]
        )
        == 0
    )
    training = read_training_list(out, "sphereface", LFW_IMAGES)
    assert (len(training.samples), len({s.label for s in training.samples})) == (4964, 430)
    classes = read_class_map(str(tmp_path / "lfw_devtrain4.classes.txt"))
    assert classes == sorted(people) and len(classes) == 430
    table = read_landmarks(LFW_LANDMARKS)
    for sample in training.samples[::97]:
        relpath = os.path.relpath(sample.path, LFW_IMAGES)
        assert relpath.split("/")[0] == classes[sample.label]
        np.testing.assert_array_equal(sample.landmarks, table[relpath])
    with pytest.raises(FileExistsError, match="lfw_devtrain4.txt exists"):
        make_list_main(["--root", LFW_IMAGES, "--output", out])


@pytest.fixture
def small_tree(tmp_path):
    """Five DevTrain people with >= 4 images, symlinked, plus a corrupt JPEG, an empty folder and a stray file."""
    people = devtrain_people(min_images=4, count=5)
    root = tmp_path / "tree"
    link_tree(people, str(root))
    first = sorted(people)[0]
    write_corrupt_jpeg(str(root / first / f"{first}_9999.jpg"))
    os.makedirs(root / "Nobody")
    (root / "README.txt").write_text("not an identity", encoding="utf-8")
    table = read_landmarks(LFW_LANDMARKS)
    landmarks = tmp_path / "landmarks.txt"
    relpaths = [p for name in sorted(people) for p in people[name]] + [f"{first}/{first}_9999.jpg"]
    landmarks.write_text(
        "".join(
            f"{p}\t" + "\t".join(f"{v:.2f}" for v in table.get(p, table[relpaths[0]]).ravel()) + "\n" for p in relpaths
        ),
        encoding="utf-8",
    )
    return str(root), people, str(landmarks)


def test_identity_tree_list_equals_folder_reader(small_tree, tmp_path):
    root, people, _ = small_tree
    out = str(tmp_path / "list.txt")
    assert make_list_main(["--root", root, "--output", out, "--min_images", "4"]) == 0
    listed = read_training_list(out, "plain", root)
    folder = read_training_list(root, "folder")
    assert [(s.path, s.label) for s in listed.samples] == [(s.path, s.label) for s in folder.samples]
    assert folder.class_names == sorted(people) == read_class_map(str(tmp_path / "list.classes.txt"))
    counts = [len(people[name]) for name in sorted(people)]
    counts[0] += 1  # the corrupt JPEG is an image file of the first identity
    assert np.bincount([s.label for s in listed.samples]).tolist() == counts
    arcface = str(tmp_path / "arcface.txt")
    make_list_main(["--root", root, "--output", arcface, "--format", "arcface", "--absolute"])
    first = read_training_list(arcface, "arcface").samples[0]
    assert first.path == os.path.abspath(listed.samples[0].path) and first.label == 0


def test_training_run_on_the_lfw_tree_skips_the_corrupt_jpeg(small_tree, tmp_path, restore_logging):
    from src.train.loop import train

    root, people, landmarks = small_tree
    listing = str(tmp_path / "train.txt")
    make_list_main(["--root", root, "--landmarks", landmarks, "--output", listing])
    images = sum(len(v) for v in people.values()) + 1
    out = tmp_path / "run"
    cfg = load_config(
        [
            f"--train_list={listing}",
            f"--train_root={root}",
            "--list_format=sphereface",
            f"--output_dir={out}",
            "--image_size=[32, 32]",
            "--backbone=sphere4",
            "--backbone_width=0.125",
            "--embedding_size=16",
            "--head.type=cosface",
            f"--batch_size={images}",
            "--max_steps=2",
            "--num_workers=1",
            "--log_interval=1",
            "--lr=0.01",
            "--align_jitter=2",
        ]
    )
    train(cfg)
    log = (out / "log_rank0.txt").read_text(encoding="utf-8")
    assert f"{images} images of 5 classes from {listing}" in log
    assert log.count("skipped unusable image") == 2  # met once per epoch (one step = one epoch here)
    assert "finished 2 steps" in log and "1 unreadable images skipped" in log
    assert any(name.endswith(".ckpt") for name in os.listdir(out / "checkpoints"))
