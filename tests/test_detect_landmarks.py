"""tools/detect_landmarks.py: raw identity tree -> sphereface list (round trip through the list readers), bad
inputs each a counted skip, several faces, resume after a kill. Real LFW images from ../shared."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from src.data.landmarks import read_landmarks
from src.data.readers import read_training_list
from src.detect import files as detect_files_module
from tools import detect_landmarks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEOPLE = {
    "Aaron_Eckhart": ["Aaron_Eckhart_0001.jpg"],
    "Zico": ["Zico_0001.jpg", "Zico_0002.jpg"],
    "Roy_Moore": ["Roy_Moore_0005.jpg"],
}


@pytest.fixture
def raw_tree(shared_dir, tmp_path):
    """An identity tree of real LFW photos plus one bad file of each kind in folder 'Bad'."""
    lfw = os.path.join(shared_dir, "data", "lfw", "images_150")
    root = tmp_path / "raw"
    for person, names in PEOPLE.items():
        (root / person).mkdir(parents=True)
        for name in names:
            shutil.copy(os.path.join(lfw, person, name), root / person / name)
    face = cv2.imread(os.path.join(lfw, "Zico", "Zico_0001.jpg"))
    bad = root / "Bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    cv2.imwrite(str(bad / "grey.png"), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(bad / "rgba.png"), cv2.cvtColor(face, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(bad / "tiny.jpg"), cv2.resize(face, (15, 15)))
    cv2.imwrite(str(bad / "noface.jpg"), np.full((120, 160, 3), 90, np.uint8))
    wide = np.full((300, 4100, 3), 128, np.uint8)  # a 4100 px panorama: detected on a 2000 px copy
    wide[75:225, 2000:2150] = face
    cv2.imwrite(str(bad / "huge.jpg"), wide)
    return root


def run_tool(root, output, *extra):
    return detect_landmarks.main(
        ["--root", str(root), "--output", str(output), "--workers", "1", "--batch_size", "4", *extra]
    )


def test_labelled_list_round_trip_and_bad_inputs(weights, raw_tree, shared_dir, tmp_path):
    output = tmp_path / "list.txt"
    assert run_tool(raw_tree, output, "--labels", "--detector_weights", weights) == 0
    report = json.loads((tmp_path / "list.txt.report.json").read_text())
    assert report["images"] == 11 and report["written"] == 7
    assert report["skipped"] == {
        "no_face": ["Bad/noface.jpg"],
        "too_small": ["Bad/tiny.jpg"],
        "unreadable": ["Bad/corrupt.jpg", "Bad/empty.jpg"],
    }
    assert "the file is empty" in report["skipped_details"]["Bad/empty.jpg"]
    assert report["several_faces"] == ["Roy_Moore/Roy_Moore_0005.jpg"]
    samples = read_training_list(str(output), "sphereface", str(raw_tree)).samples
    by_path = {os.path.relpath(s.path, raw_tree): s for s in samples}
    assert sorted(by_path) == sorted(
        [
            "Aaron_Eckhart/Aaron_Eckhart_0001.jpg",
            "Zico/Zico_0001.jpg",
            "Zico/Zico_0002.jpg",
            "Roy_Moore/Roy_Moore_0005.jpg",
            "Bad/grey.png",
            "Bad/rgba.png",
            "Bad/huge.jpg",
        ]
    )
    classes = (tmp_path / "list.txt.classes.txt").read_text().split("\n")
    assert classes[:4] == ["0\tAaron_Eckhart", "1\tBad", "2\tRoy_Moore", "3\tZico"]
    assert by_path["Zico/Zico_0002.jpg"].label == 3 and by_path["Bad/huge.jpg"].label == 1
    reference = read_landmarks(os.path.join(shared_dir, "data", "lfw", "lfw_landmark_150.txt"))
    for relpath in ("Aaron_Eckhart/Aaron_Eckhart_0001.jpg", "Zico/Zico_0001.jpg", "Roy_Moore/Roy_Moore_0005.jpg"):
        points, expected = by_path[relpath].landmarks, reference[relpath]
        error = np.linalg.norm(points - expected, axis=1).mean() / np.linalg.norm(expected[1] - expected[0])
        assert error < 0.1, relpath
    np.testing.assert_allclose(by_path["Bad/rgba.png"].landmarks, by_path["Zico/Zico_0001.jpg"].landmarks, atol=0.01)
    np.testing.assert_allclose(
        by_path["Bad/huge.jpg"].landmarks - [2000, 75], by_path["Zico/Zico_0001.jpg"].landmarks, atol=3
    )
    assert not (tmp_path / "list.txt.partial").exists() and not (tmp_path / "list.txt.skipped.tsv").exists()
    assert run_tool(raw_tree, output, "--labels") == 2  # never overwrites


def test_landmark_file_and_resume(weights, raw_tree, tmp_path, monkeypatch):
    names = tmp_path / "names.txt"
    names.write_text("Zico/Zico_0001.jpg\nZico/Zico_0002.jpg 1\nAaron_Eckhart/Aaron_Eckhart_0001.jpg\nBad/empty.jpg\n")
    output = tmp_path / "landmarks.txt"
    # a killed run: one line written, the next cut short, one skip recorded
    (tmp_path / "landmarks.txt.partial").write_text("Zico/Zico_0001.jpg\t" + "\t".join(["50"] * 10) + "\nZico/Zi")
    (tmp_path / "landmarks.txt.skipped.tsv").write_text("Bad/empty.jpg\tunreadable\tempty\n")
    seen = []
    original = detect_files_module.detect_files

    def spy(detector, root, relpaths):
        seen.extend(relpaths)
        return original(detector, root, relpaths)

    monkeypatch.setattr(detect_files_module, "detect_files", spy)
    assert run_tool(raw_tree, output, "--list", str(names), "--detector_weights", weights) == 0
    assert seen == ["Zico/Zico_0002.jpg", "Aaron_Eckhart/Aaron_Eckhart_0001.jpg"]
    table = read_landmarks(str(output))
    assert sorted(table) == ["Aaron_Eckhart/Aaron_Eckhart_0001.jpg", "Zico/Zico_0001.jpg", "Zico/Zico_0002.jpg"]
    assert table["Zico/Zico_0001.jpg"].tolist() == [[50, 50]] * 5
    assert len(output.read_text().splitlines()) == 3 and "\t" in output.read_text()
    report = json.loads((tmp_path / "landmarks.txt.report.json").read_text())
    assert report["skipped"]["unreadable"] == ["Bad/empty.jpg"] and report["written"] == 3


@pytest.mark.slow
def test_process_data_detects_first_on_a_raw_tree(weights, shared_dir, tmp_path):
    lfw = os.path.join(shared_dir, "data", "lfw", "images_150")
    raw = tmp_path / "raw"
    for person, names in PEOPLE.items():
        (raw / person).mkdir(parents=True)
        for name in names:
            shutil.copy(os.path.join(lfw, person, name), raw / person / name)
    landmark_list, out = tmp_path / "raw_landmarks.txt", tmp_path / "aligned"
    env = dict(os.environ, FACEREC_MTCNN_WEIGHTS=weights, DETECT_WORKERS="2", PYTHON=sys.executable)
    result = subprocess.run(
        ["bash", os.path.join(REPO, "scripts", "process_data.sh"), str(raw), str(landmark_list), str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not found: detecting faces and landmarks" in result.stderr
    assert len(read_training_list(str(landmark_list), "sphereface", str(raw)).samples) == 4
    assert sorted((tmp_path / "aligned.txt").read_text().split("\n"))[1:] == [
        "Aaron_Eckhart/Aaron_Eckhart_0001.jpg 0",
        "Roy_Moore/Roy_Moore_0005.jpg 1",
        "Zico/Zico_0001.jpg 2",
        "Zico/Zico_0002.jpg 2",
    ]
    assert cv2.imread(str(out / "Zico" / "Zico_0002.jpg")).shape == (112, 96, 3)
