"""The dataset checker (tools/check_dataset.py) on a generated list holding one of each fault, with the exact
lines it must report, and the start-of-run check that stops train.py naming the file and line."""

import json
import os

import numpy as np
import pytest

from src.data.check import DataCheckError, dataset_report, load_training_list
from src.data.readers import read_training_list
from src.model_utils.config import load_config
from tests.face_data import random_image, write_corrupt_jpeg, write_image
from tools.check_dataset import main as check_main

INSIDE = "10 12 28 12 19 20 12 28 26 28"
OUTSIDE = "10 12 500 12 19 20 12 28 26 28"


@pytest.fixture
def dataset(tmp_path):
    """root/ with images, and list.txt (sphereface format, num_classes 4) with a fault on most lines."""
    rng = np.random.default_rng(0)
    root = tmp_path / "root"
    for relpath in ("id0/a.png", "id0/b.png", "id1/d.png", "id3/e.png", "id3/f.png"):
        write_image(str(root / relpath), random_image(rng))
    write_corrupt_jpeg(str(root / "id3" / "broken.jpg"))
    lines = [
        f"id0/a.png 0 {INSIDE}",  # 1 fine
        f"id0/b.png 0 {INSIDE}",  # 2 listed again on line 8 with another label
        "id1/c.png 1 12 13",  # 3 malformed
        f"id1/d.png 1 {INSIDE}",  # 4 listed again on line 10 with the same label
        f"id1/missing.png 1 {INSIDE}",  # 5 missing file
        f"id3/broken.jpg 3 {INSIDE}",  # 6 undecodable
        f"id3/e.png 9 {INSIDE}",  # 7 label >= num_classes
        f"id0/b.png 1 {INSIDE}",  # 8
        f"id3/f.png 3 {OUTSIDE}",  # 9 landmark outside the 40x40 image
        f"id1/d.png 1 {INSIDE}",
    ]  # 10
    path = tmp_path / "list.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path), str(root)


def test_report_names_every_fault_by_line(dataset):
    list_path, root = dataset
    report = dataset_report(list_path, "sphereface", root, num_classes=4, workers=2)
    assert (report["images"], report["classes"], report["classes_with_images"]) == (9, 4, 4)
    assert (report["images_per_class"]["min"], report["images_per_class"]["max"]) == (1, 4)
    histogram = {row["images"]: row["classes"] for row in report["images_per_class"]["histogram"]}
    assert (histogram["1"], histogram["2"], histogram["3-4"], sum(histogram.values())) == (1, 2, 1, 4)
    assert [(e["line"], e["file"]) for e in report["malformed_lines"]] == [(3, list_path)]
    assert "expected 'path label x1 y1 ... x5 y5' (12 fields), got 4 fields" in report["malformed_lines"][0]["error"]
    assert [(e["line"], e["label"]) for e in report["labels_out_of_range"]] == [(7, 9)]
    assert report["label_gaps"] == [2]
    assert [(d["lines"], d["labels"], d["conflicting"]) for d in report["duplicate_paths"]] == [
        ([2, 8], [0, 1], True),
        ([4, 10], [1, 1], False),
    ]
    assert [d["path"] for d in report["conflicting_duplicates"]] == [os.path.join(root, "id0/b.png")]
    assert [(e["line"], e["path"]) for e in report["missing_files"]] == [(5, os.path.join(root, "id1/missing.png"))]
    assert [e["line"] for e in report["undecodable_images"]] == [6]
    assert "cannot decode image" in report["undecodable_images"][0]["error"]
    assert [(e["line"], e["image_size"]) for e in report["bad_landmarks"]] == [(9, [40, 40])]
    assert report["errors"] == {
        "malformed_lines": 1,
        "labels_out_of_range": 1,
        "missing_files": 1,
        "undecodable_images": 1,
        "bad_landmarks": 1,
        "conflicting_duplicates": 1,
    }
    assert report["warnings"] == {"label_gaps": 1, "duplicate_paths": 2}
    assert report["ok"] is False


def test_cli_writes_json_and_exits_non_zero(dataset, tmp_path):
    list_path, root = dataset
    out = str(tmp_path / "report.json")
    assert (
        check_main(
            [
                "--list",
                list_path,
                "--format",
                "sphereface",
                "--root",
                root,
                "--num_classes",
                "4",
                "--workers",
                "1",
                "--report",
                out,
            ]
        )
        == 1
    )
    with open(out, encoding="utf-8") as f:
        report = json.load(f)
    assert report["errors"]["undecodable_images"] == 1 and report["ok"] is False
    clean = tmp_path / "clean.txt"
    clean.write_text(f"id0/a.png 0 {INSIDE}\nid1/d.png 1 {INSIDE}\n", encoding="utf-8")
    assert check_main(["--list", str(clean), "--format", "sphereface", "--root", root, "--report", out]) == 0
    with open(out, encoding="utf-8") as f:
        assert json.load(f)["ok"] is True


def test_cheap_mode_does_not_decode(dataset):
    list_path, root = dataset
    report = dataset_report(list_path, "sphereface", root, num_classes=4, decode=False)
    assert report["undecodable_images"] is None and report["bad_landmarks"] is None
    assert report["errors"]["missing_files"] == 1 and report["errors"]["undecodable_images"] == 0


def test_start_of_run_check_names_file_and_line(dataset, tmp_path):
    list_path, root = dataset
    lines = open(list_path, encoding="utf-8").read().splitlines()
    short = tmp_path / "short.txt"
    short.write_text("\n".join(lines[:2] + lines[3:7]) + "\n", encoding="utf-8")  # no malformed line 3
    with pytest.raises(DataCheckError) as err:
        load_training_list(str(short), "sphereface", root, num_classes=4)
    message = str(err.value)
    assert "2 problem(s)" in message
    assert f"{short}:6: label 9 of {os.path.join(root, 'id3/e.png')} is outside 0..3 (num_classes=4)" in message
    assert f"{short}:4: image not found: {os.path.join(root, 'id1/missing.png')}" in message
    with pytest.raises(DataCheckError, match=r"^1 problem\(s\).*\n.*short.txt:4: image not found"):
        load_training_list(str(short), "sphereface", root, num_classes=10)  # labels in range now
    write_image(os.path.join(root, "id1", "missing.png"), random_image(np.random.default_rng(1)))
    samples, num_classes = load_training_list(str(short), "sphereface", root)
    assert num_classes == 10 and [s.line for s in samples] == [1, 2, 3, 4, 5, 6]


def test_class_map_written_next_to_checkpoints(tmp_path):
    for name in ("000001.jpg", "000002.jpg", "000003.jpg"):
        (tmp_path / name).write_bytes(b"not decoded by the start-of-run check")
    identities = tmp_path / "identity_CelebA.txt"
    identities.write_text("000001.jpg 2880\n000002.jpg 5\n000003.jpg 17\n", encoding="utf-8")
    checkpoints = tmp_path / "run" / "checkpoints"
    samples, num_classes = load_training_list(str(identities), "celeba", str(tmp_path), None, str(checkpoints))
    assert num_classes == 3 and [s.label for s in samples] == [2, 0, 1]
    assert (checkpoints / "class_names.txt").read_text(encoding="utf-8") == "0\t5\n1\t17\n2\t2880\n"


def test_train_stops_on_a_missing_file_naming_it(tmp_path, restore_logging):
    from src.train.loop import train

    (tmp_path / "a.png").write_bytes(b"")
    listing = tmp_path / "list.txt"
    listing.write_text("a.png 0\ngone.png 1\n", encoding="utf-8")
    cfg = load_config([f"--train_list={listing}", f"--train_root={tmp_path}", f"--output_dir={tmp_path / 'out'}"])
    with pytest.raises(DataCheckError, match=f"{listing}:2: image not found: .*gone.png"):
        train(cfg)


def test_report_on_a_recordio_file(tmp_path):
    from tests.test_recordio import CLASS_SIZES, make_rec

    rec, _ = make_rec(str(tmp_path))
    report = dataset_report(rec, "recordio", workers=2)
    assert (report["images"], report["classes"], report["ok"]) == (sum(CLASS_SIZES), len(CLASS_SIZES), True)
    assert report["undecodable_images"] == [] and report["missing_files"] == []
    with open(rec, "r+b") as f:  # spoil the image inside the third record
        f.seek(read_training_list(rec, "recordio").samples[2].offset + 8 + 24)
        f.write(b"\0" * 16)
    report = dataset_report(rec, "recordio")
    assert [row["line"] for row in report["undecodable_images"]] == [4] and report["ok"] is False
