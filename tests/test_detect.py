"""MTCNN detection (src/detect): the legacy-torch reader, the weight conversion against the original networks,
NMS / pyramid / resampling on synthetic input, the whole cascade against facenet-pytorch, bad inputs.

``fixtures/mtcnn_reference.npz`` was written once by a script outside the project that ran facenet-pytorch 2.6.0's
own PNet/RNet/ONet and ``detect_face`` (PyTorch 2.13, the wheel unpacked, torchvision's ``batched_nms`` replaced by a
plain IoU NMS): network outputs for seeded random uint8 inputs, and the boxes and points it finds in three
``images_150`` images. ``fixtures/torch_legacy_tiny.pt`` is ``torch.save`` (legacy format) of
``{w: arange(12).reshape(3, 4), t: w.T, s: w[1:, 2], i: int64 [1, -2, 3]}``.
The weights come through the detector's own fetch (cache, else ``pip download``); those tests skip only when the
package index cannot be reached.
"""

import copy
import json
import os
import pickle

import cv2
import numpy as np
import pytest

from src.data.image_io import load_rgb
from src.deploy.export_model import run_export
from src.detect import FaceDetector, ImageTooSmallError, WeightsError
from src.detect.boxes import nms, proposals, square
from src.detect.detector import Face, _to_input, central_first
from src.detect.resample import area_resize
from src.detect.torch_legacy import (
    MAGIC,
    PROTOCOL_VERSION,
    TorchFormatError,
    read_state_dict,
)
from src.detect.weights import resolve_weights
from src.model_utils.config import DEFAULT_CONFIG, load_config
from src.model_utils.safe_pickle import UnsafePickleError

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
REFERENCE = os.path.join(FIXTURES, "mtcnn_reference.npz")


@pytest.fixture(scope="module")
def detector(weights):
    return FaceDetector(weights)


def test_legacy_reader_reads_strided_tensors():
    with open(os.path.join(FIXTURES, "torch_legacy_tiny.pt"), "rb") as f:
        state = read_state_dict(f.read(), "tiny.pt")
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert list(state) == ["w", "t", "s", "i"]
    np.testing.assert_array_equal(state["w"], w)
    np.testing.assert_array_equal(state["t"], w.T)
    np.testing.assert_array_equal(state["s"], w[1:, 2])
    assert state["i"].dtype == np.int64 and state["i"].tolist() == [1, -2, 3]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_legacy_reader_refuses_a_crafted_pickle(tmp_path):
    marker = tmp_path / "pwned"
    header = b"".join(pickle.dumps(x, protocol=2) for x in (MAGIC, PROTOCOL_VERSION, {"little_endian": True}))
    crafted = header + pickle.dumps({"conv1.weight": _Exploit(marker)}, protocol=2)
    with pytest.raises(UnsafePickleError, match=r"evil\.pt: refused global '(posix|os)\.system'"):
        read_state_dict(crafted, "evil.pt")
    assert not marker.exists()
    with pytest.raises(TorchFormatError, match="zip-format"):
        read_state_dict(b"PK\x03\x04rest", "new.pt")
    with pytest.raises(TorchFormatError, match="junk.pt"):
        read_state_dict(b"not a pickle", "junk.pt")


def test_converted_networks_match_the_original(detector):
    ref = np.load(REFERENCE)
    outputs = {
        "pnet": ("regression", "probability"),
        "rnet": ("regression", "probability"),
        "onet": ("regression", "landmarks", "probability"),
    }
    for net, names in outputs.items():
        results = getattr(detector.nets, net)(_to_input(ref[f"{net}_input"].astype(np.float32)))
        for name, result in zip(names, results):
            np.testing.assert_allclose(result.asnumpy(), ref[f"{net}_{name}"], atol=1e-5, err_msg=f"{net} {name}")


def test_detections_match_facenet_pytorch(detector, shared_dir):
    detector = copy.copy(detector)
    detector.retry = False  # the reference's cascade alone: the padded retry is this package's own
    ref = np.load(REFERENCE)
    root = os.path.join(shared_dir, "data", "lfw", "images_150")
    images = [load_rgb(os.path.join(root, rel)) for rel in ref["detect_images"]]
    for i, faces in enumerate(detector.detect_batch(images)):
        expected_boxes, expected_points = ref[f"detect_{i}_boxes"], ref[f"detect_{i}_points"]
        assert len(faces) == len(expected_boxes)
        order = np.argsort(-expected_boxes[:, 4])
        got = sorted(faces, key=lambda face: -face.score)
        for face, k in zip(got, order):
            # the detector reports one pixel up and left of the reference code (the lfw_landmark.txt convention)
            np.testing.assert_allclose(face.box + 1, expected_boxes[k, :4], atol=1e-2)
            np.testing.assert_allclose(face.landmarks + 1, expected_points[k], atol=1e-2)
            assert face.score == pytest.approx(expected_boxes[k, 4], abs=1e-4)
    single = detector.detect(images[1])
    assert [f.score for f in single] == [f.score for f in detector.detect_batch(images)[1]]
    centres = [np.hypot((f.box[0] + f.box[2]) / 2 - 75, (f.box[1] + f.box[3]) / 2 - 75) for f in single]
    assert centres == sorted(centres) and len(single) == 4


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 4, 4]], np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.95], np.float32)
    # box 0 overlaps box 1 with IoU 81/119 = 0.68; box 3 lies inside box 0 (IoU 0.16, 16/16 of the smaller)
    assert nms(boxes, scores, 0.5).tolist() == [3, 1, 2]
    assert nms(boxes, scores, 0.7).tolist() == [3, 1, 0, 2]
    assert nms(boxes, scores, 0.7, mode="min").tolist() == [3, 1, 2]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


def test_proposals_map_windows_back_to_the_image():
    probability = np.zeros((5, 6), np.float32)
    probability[2, 3] = 0.9
    regression = np.arange(4 * 30, dtype=np.float32).reshape(4, 5, 6)
    boxes, scores, offsets = proposals(regression, probability, 0.5, 0.6)
    # cell (row 2, col 3) is the 12x12 window from (6, 4) of the half-size image; in the reference code's
    # one-based pixels: ((6 + 1) / 0.5, (4 + 1) / 0.5) to ((6 + 12) / 0.5, (4 + 12) / 0.5)
    np.testing.assert_array_equal(boxes, [[14, 10, 36, 32]])
    assert scores.tolist() == [pytest.approx(0.9)] and offsets.tolist() == [[15, 45, 75, 105]]
    np.testing.assert_array_equal(square(np.array([[0, 0, 10, 4]], np.float32)), [[0, -3, 10, 7]])


def test_pyramid_and_area_resampling():
    detector = FaceDetector.__new__(FaceDetector)
    detector.min_face, detector.factor = 20, 0.709
    scales = detector.scales(150, 200)
    assert scales[0] == pytest.approx(0.6) and np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert 150 * scales[-1] >= 12 > 150 * scales[-1] * 0.709 and len(scales) == 6
    image = np.random.default_rng(0).integers(0, 256, (7, 10, 3)).astype(np.uint8)
    small = area_resize(image, 3, 4)
    # output cell (1, 2) covers rows 2..4 (floor(7/3) .. ceil(14/3) - 1) and columns 5..7
    np.testing.assert_allclose(small[1, 2], image[2:5, 5:8].reshape(-1, 3).mean(0), rtol=1e-6)
    np.testing.assert_allclose(area_resize(image, 7, 10), image)
    np.testing.assert_allclose(area_resize(np.stack([image, image]), 3, 4)[1], small)


def test_central_face_first():
    def face(x1, y1, size):
        return Face(np.array([x1, y1, x1 + size, y1 + size], np.float32), 0.9, np.zeros((5, 2), np.float32))

    # centres (20, 20), (70, 70), (70, 70), (115, 115) in a 140x140 image: the tie goes to the larger box
    faces = [face(0, 0, 40), face(60, 60, 20), face(55, 55, 30), face(100, 100, 30)]
    assert [f.box[0] for f in central_first(faces, 140, 140)] == [55, 60, 100, 0]


def test_bad_inputs(detector, shared_dir, tmp_path):
    with pytest.raises(ImageTooSmallError, match="is 19x30 px, smaller than the smallest face looked for"):
        detector.detect(np.zeros((30, 19, 3), np.uint8))
    with pytest.raises(ValueError, match="expected an HxWx3 uint8 RGB image"):
        detector.detect(np.zeros((30, 30), np.uint8))
    assert detector.detect(np.full((120, 160, 3), 128, np.uint8)) == []
    assert detector.detect(np.full((25, 4200, 3), 128, np.uint8)) == []  # shrunk to 2000x12: no pyramid level
    face_image = load_rgb(os.path.join(shared_dir, "data", "lfw", "images_150", "Zico", "Zico_0001.jpg"))
    reference = detector.detect(face_image)[0]
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), cv2.cvtColor(face_image, cv2.COLOR_RGB2GRAY))
    assert len(detector.detect(load_rgb(str(grey)))) == 1
    rgba = tmp_path / "rgba.png"
    cv2.imwrite(str(rgba), cv2.cvtColor(face_image, cv2.COLOR_RGB2BGRA))
    np.testing.assert_allclose(detector.detect(load_rgb(str(rgba)))[0].landmarks, reference.landmarks, atol=1e-3)
    # a 4200 px wide photo is detected on an area-downscaled 2000 px copy, the results mapped back to its pixels
    huge = np.full((630, 4200, 3), 128, np.uint8)
    huge[:, 1000:1630] = cv2.resize(face_image, (630, 630), interpolation=cv2.INTER_LINEAR)
    faces = detector.detect(huge)
    copy = detector.detect(cv2.resize(huge, (2000, 300), interpolation=cv2.INTER_AREA))
    assert len(faces) == len(copy) == 1
    np.testing.assert_allclose(faces[0].landmarks, (copy[0].landmarks + 0.5) * 2.1 - 0.5, rtol=1e-5)
    np.testing.assert_allclose(faces[0].box, (copy[0].box + 0.5) * 2.1 - 0.5, rtol=1e-5)
    # and they are the landmarks of the 150 px original, scaled and moved (the upscale blurs them by a few pixels)
    expected = (reference.landmarks + 0.5) * 4.2 - 0.5 + [1000, 0]
    inter_ocular = np.linalg.norm(expected[1] - expected[0])
    assert np.linalg.norm(faces[0].landmarks - expected, axis=1).mean() / inter_ocular < 0.1


def test_unreachable_index_gives_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FACEREC_MTCNN_WEIGHTS", raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(
        WeightsError,
        match=r"the package index cannot be reached.*pip download --no-deps "
        r"facenet-pytorch==2\.6\.0 -d DIR.*FACEREC_MTCNN_WEIGHTS",
    ):
        resolve_weights()


def test_weights_from_disk_are_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEREC_CACHE", str(tmp_path / "cache"))
    for name in ("pnet", "rnet", "onet"):
        (tmp_path / f"{name}.pt").write_bytes(b"not the weights")
    monkeypatch.setenv("FACEREC_MTCNN_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match=r"pnet\.pt has SHA-256 .*, expected a2a71925"):
        resolve_weights()
    with pytest.raises(WeightsError, match="MTCNN weights not found at /nonexistent"):
        resolve_weights("/nonexistent")
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
@pytest.mark.parametrize("file_format", ["MINDIR", "ONNX"])
def test_export_detector(weights, tmp_path, file_format, capsys):
    base = str(tmp_path / "det")
    status = run_export(
        load_config(
            [
                "--export_detector",
                "--device_target",
                "CPU",
                "--file_format",
                file_format,
                f"--file_name={base}",
                f"--detector_weights={weights}",
                "--verify",
            ],
            default_config=DEFAULT_CONFIG,
        )
    )
    out = capsys.readouterr().out
    assert status == 0 and out.count("PASS") == 3, out
    extension = {"MINDIR": ".mindir", "ONNX": ".onnx"}[file_format]
    for name in ("pnet", "rnet", "onet"):
        assert os.path.isfile(f"{base}_{name}{extension}")
    with open(f"{base}_mtcnn.json", encoding="utf-8") as f:
        record = json.load(f)
    assert record["networks"]["pnet"]["input_shape"] == [None, 3, None, None]
    assert record["networks"]["onet"]["outputs"] == ["box_regression", "landmarks", "face_probability"]
    assert record["mean"] == 127.5 and record["channel_order"] == "RGB"
