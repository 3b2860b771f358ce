"""The offline aligner (tools/align_dataset.py, scripts/process_data.sh) on real LFW images: the aligned tree
equals the in-memory alignment, the training list keeps the labels, failures are skipped and reported with their
list line, a re-run resumes, and the source folder is never written."""

import json
import os

import cv2
import numpy as np
import pytest

from src.data.align_files import SourceOverwriteError
from src.data.alignment import align_face
from src.data.image_io import load_rgb
from src.data.landmarks import read_landmarks
from src.data.readers import format_line, read_training_list
from tests.face_data import LFW_IMAGES, LFW_LANDMARKS, devtrain_people, link_tree, write_corrupt_jpeg
from tools.align_dataset import main as align_main


@pytest.fixture
def raw(tmp_path):
    """src/ (symlinked LFW images of two DevTrain people + a corrupt JPEG) and a sphereface list for it."""
    people = devtrain_people(min_images=4, count=2)
    src = tmp_path / "src"
    link_tree(people, str(src))
    table = read_landmarks(LFW_LANDMARKS)
    lines = [
        format_line("sphereface", p, label, table[p]) for label, name in enumerate(sorted(people)) for p in people[name]
    ]
    name = sorted(people)[1]
    write_corrupt_jpeg(str(src / name / "broken.jpg"))
    lines.insert(3, format_line("sphereface", f"{name}/broken.jpg", 1, table[people[name][0]]))
    lines.append(format_line("sphereface", f"{name}/absent.jpg", 1, table[people[name][0]]))
    listing = tmp_path / "raw_list.txt"
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(src), str(listing)


@pytest.mark.parametrize("size, workers", [((112, 96), 1), ((112, 112), 2)])
def test_aligned_tree_list_and_report(raw, tmp_path, size, workers):
    src, listing = raw
    out = str(tmp_path / "aligned")
    before = {p: os.path.getmtime(os.path.join(src, p)) for p in os.listdir(src)}
    assert (
        align_main(
            [
                "--src_root",
                src,
                "--list",
                listing,
                "--out_root",
                out,
                "--workers",
                str(workers),
                "--image_size",
                str(size[0]),
                str(size[1]),
            ]
        )
        == 0
    )
    raw_samples = read_training_list(listing, "sphereface", src).samples
    aligned = read_training_list(out + ".txt", "plain", out).samples
    good = [s for s in raw_samples if "broken" not in s.path and "absent" not in s.path]
    assert [(os.path.relpath(s.path, out), s.label) for s in aligned] == [
        (os.path.relpath(s.path, src), s.label) for s in good
    ]
    for raw_sample, sample in zip(good, aligned):
        image = load_rgb(sample.path)
        expected = align_face(load_rgb(raw_sample.path), raw_sample.landmarks, size)
        assert image.shape == size + (3,)
        assert np.abs(image.astype(int) - expected.astype(int)).mean() < 2.0  # JPEG quality 95
    with open(out + "_report.json", encoding="utf-8") as f:
        report = json.load(f)
    assert (report["images"], report["aligned"], report["already_aligned"]) == (len(raw_samples), len(good), 0)
    assert [(row["line"], os.path.basename(row["path"])) for row in report["failed"]] == [
        (4, "broken.jpg"),
        (len(raw_samples), "absent.jpg"),
    ]
    assert "cannot decode image" in report["failed"][0]["error"]
    assert "cannot read image" in report["failed"][1]["error"]
    assert {p: os.path.getmtime(os.path.join(src, p)) for p in os.listdir(src)} == before


def test_rerun_resumes_without_rewriting(raw, tmp_path):
    src, listing = raw
    out = str(tmp_path / "aligned")
    align_main(["--src_root", src, "--list", listing, "--out_root", out, "--workers", "1"])
    first = read_training_list(out + ".txt", "plain", out).samples[0].path
    os.remove(first)
    kept = read_training_list(out + ".txt", "plain", out).samples[1].path
    stamp = os.path.getmtime(kept)
    align_main(["--src_root", src, "--list", listing, "--out_root", out, "--workers", "1"])
    with open(out + "_report.json", encoding="utf-8") as f:
        report = json.load(f)
    assert report["aligned"] == 1 and report["already_aligned"] == report["images"] - 3
    assert os.path.isfile(first) and os.path.getmtime(kept) == stamp


def test_refuses_to_write_into_the_source(raw, tmp_path):
    src, listing = raw
    for out in (src, os.path.join(src, "aligned"), str(tmp_path)):
        with pytest.raises(SourceOverwriteError, match="overlaps the source folder"):
            align_main(["--src_root", src, "--list", listing, "--out_root", out])
    with pytest.raises(SourceOverwriteError, match="is an input of this run"):
        align_main(["--src_root", src, "--list", listing, "--out_root", str(tmp_path / "a"), "--out_list", listing])
    assert not os.path.exists(tmp_path / "a")


def test_landmark_file_without_labels(tmp_path):
    ((name, relpaths),) = devtrain_people(min_images=4, count=1).items()
    table = read_landmarks(LFW_LANDMARKS)
    landmarks = tmp_path / "lm.txt"
    landmarks.write_text(
        "".join(p + "\t" + "\t".join(f"{v:.2f}" for v in table[p].ravel()) + "\n" for p in relpaths), encoding="utf-8"
    )
    out = tmp_path / "lfw_aligned"
    assert (
        align_main(["--src_root", LFW_IMAGES, "--landmarks", str(landmarks), "--out_root", str(out), "--workers", "1"])
        == 0
    )
    assert sorted(os.listdir(out / name)) == sorted(os.path.basename(p) for p in relpaths)
    assert not os.path.exists(str(out) + ".txt")
    image = cv2.imread(str(out / relpaths[0]))
    assert image.shape == (112, 96, 3)
