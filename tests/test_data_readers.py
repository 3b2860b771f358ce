"""Training list readers: every format on generated files with known answers, and each malformed line's error
naming the file and line."""

import os

import numpy as np
import pytest

from src.data.readers import READERS, ListFormatError, format_line, read_samples, read_training_list
from src.data.samples import Sample, sample_origin, write_class_names

LANDMARKS = [30.5, 51.5, 65.5, 51.5, 48.0, 71.75, 33.5, 92.25, 62.5, 92.0]


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def test_plain_list_joins_root_and_keeps_line_numbers(tmp_path):
    path = write_text(tmp_path / "list.txt", "# comment\nid0/a.jpg 0\n\nid1/b.jpg\t1\n")
    samples = read_samples(path, "plain", "/data")
    assert samples == [Sample("/data/id0/a.jpg", 0, None, 2), Sample("/data/id1/b.jpg", 1, None, 4)]
    assert sample_origin(samples[1], path) == f"{path}:4"


def test_sphereface_list_tabs_or_spaces(tmp_path):
    coords = "\t".join(map(str, LANDMARKS))
    path = write_text(
        tmp_path / "casia_landmark.txt",
        f"0000045/001.jpg\t0\t{coords}\n0000099/002.jpg 7 " + " ".join(map(str, LANDMARKS)) + "\n",
    )
    training = read_training_list(path, "sphereface", "root")
    assert training.class_names is None
    first, second = training.samples
    assert (first.path, first.label, first.line) == ("root/0000045/001.jpg", 0, 1)
    assert (second.path, second.label, second.line) == ("root/0000099/002.jpg", 7, 2)
    np.testing.assert_array_equal(first.landmarks, np.array(LANDMARKS, np.float32).reshape(5, 2))
    np.testing.assert_array_equal(second.landmarks, first.landmarks)


def test_arcface_annotation_lines(tmp_path):
    path = write_text(tmp_path / "cls_train.txt", "3;/abs/datasets/3/x.jpg\n0;datasets/0/y.jpg\n")
    samples = read_samples(path, "arcface", "/work")
    assert [(s.path, s.label) for s in samples] == [("/abs/datasets/3/x.jpg", 3), ("/work/datasets/0/y.jpg", 0)]


def test_celeba_identities_are_remapped_densely(tmp_path):
    path = write_text(
        tmp_path / "identity_CelebA.txt", "000001.jpg 2880\n000002.jpg 5\n000003.jpg 2880\n000004.jpg 17\n"
    )
    training = read_training_list(path, "celeba", "img_align_celeba")
    assert [s.label for s in training.samples] == [2, 0, 2, 1]
    assert training.class_names == ["5", "17", "2880"]
    assert training.samples[1].path == os.path.join("img_align_celeba", "000002.jpg")


def test_identity_folders_sorted_classes(tmp_path):
    for relpath in ("bob/2.jpg", "bob/1.png", "alice/x.jpg", "carol/notes.txt"):
        os.makedirs(tmp_path / os.path.dirname(relpath), exist_ok=True)
        (tmp_path / relpath).write_bytes(b"")
    (tmp_path / "stray.jpg").write_bytes(b"")
    os.makedirs(tmp_path / "empty")
    training = read_training_list(str(tmp_path), "folder")
    assert training.class_names == ["alice", "bob"]
    assert [(os.path.relpath(s.path, tmp_path), s.label) for s in training.samples] == [
        ("alice/x.jpg", 0),
        ("bob/1.png", 1),
        ("bob/2.jpg", 1),
    ]


@pytest.mark.parametrize(
    "list_format, text, message",
    [
        ("plain", "a.jpg 0\nb.jpg 1 2\n", r"list.txt:2: expected 'path label', got 3 fields"),
        ("plain", "a.jpg zero\n", r"list.txt:1: label 'zero' is not an integer"),
        (
            "plain",
            "a.jpg 0 " + " ".join(map(str, LANDMARKS)) + "\n",
            r"list.txt:1: .*looks like list_format=sphereface",
        ),
        ("plain", "0;a.jpg\n", r"list.txt:1: .*looks like list_format=arcface"),
        (
            "sphereface",
            "a.jpg 0\n",
            r"list.txt:1: expected .*12 fields\), got 2 fields \(the line looks like "
            r"list_format=plain\)",
        ),
        ("sphereface", "a.jpg 0 1 2 3 4 5 6 7 8 9 x\n", r"list.txt:1: landmark coordinates must be numbers"),
        ("arcface", "b.jpg 1\n", r"list.txt:1: expected 'label;path'.*looks like list_format=plain"),
        ("arcface", "1;\n", r"list.txt:1: the path after ';' is empty"),
        ("celeba", "000001.jpg 0\n", r"list.txt:1: CelebA identity 0 is not a 1-based id"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, list_format, text, message):
    path = write_text(tmp_path / "list.txt", text)
    with pytest.raises(ListFormatError, match=message):
        read_training_list(path, list_format)


def test_malformed_lines_collected_for_the_checker(tmp_path):
    path = write_text(tmp_path / "list.txt", "a.jpg 0\nbad\nb.jpg 1\nc.jpg x\n")
    errors = []
    samples = read_training_list(path, "plain", errors=errors).samples
    assert [s.path for s in samples] == ["a.jpg", "b.jpg"]
    assert [(e.path, e.line) for e in errors] == [(path, 2), (path, 4)]


def test_missing_list_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="training list not found: .*nope.txt"):
        read_training_list(str(tmp_path / "nope.txt"), "plain")
    with pytest.raises(FileNotFoundError, match="identity folder not found"):
        read_training_list(str(tmp_path / "nope"), "folder")
    with pytest.raises(ValueError, match="unknown list_format 'csv'"):
        read_training_list(str(tmp_path), "csv")
    assert sorted(READERS) == ["arcface", "celeba", "folder", "plain", "recordio", "sphereface"]


@pytest.mark.parametrize("list_format", ["plain", "arcface", "sphereface"])
def test_format_line_round_trips(tmp_path, list_format):
    points = np.array(LANDMARKS, np.float32).reshape(5, 2)
    line = format_line(list_format, "id/img.jpg", 12, points if list_format == "sphereface" else None)
    sample = read_samples(write_text(tmp_path / "l.txt", line + "\n"), list_format)[0]
    assert (sample.path, sample.label) == ("id/img.jpg", 12)
    if list_format == "sphereface":
        np.testing.assert_array_equal(sample.landmarks, points)


def test_class_names_file(tmp_path):
    path = str(tmp_path / "classes.txt")
    write_class_names(path, ["Aaron_Peirsol", "5"])
    assert open(path, encoding="utf-8").read() == "0\tAaron_Peirsol\n1\t5\n"
