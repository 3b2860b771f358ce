"""Generated photos and a detector stand-in that knows them, for the infer.py tests that need several faces (the
stand-in of tests/test_infer_gallery.py; the network a tiny random one, MindSpore's own layers)."""

import numpy as np

from src.data.image_io import load_rgb
from src.infer.predictor import Predictor
from tests.face_data import random_image, write_image
from tests.test_infer_gallery import TINY, FakeDetector, face_at, random_checkpoint

ARGS = TINY + ["--cpu_kernels=off"]
POINTS = np.float32([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]])  # a face with a 64 px box


def tiny_model(folder):
    return random_checkpoint(folder / "tiny.ckpt", 5)


def make_photos(folder, monkeypatch):
    """Four generated 120x120 photos under ``folder``, and a detector (given to infer.py's Predictor) that knows
    them: Ann and Bob in ``gallery/`` with one face each; in ``queries/`` Ann with a tiny false detection (16 px,
    score 0.73) beside her face, and a photo of two faces. Returns {relpath: path}."""
    detector = FakeDetector()
    rng = np.random.default_rng(0)
    paths = {}
    for name, faces in {
        "gallery/Ann/1.png": [face_at(POINTS)],
        "gallery/Bob/1.png": [face_at(POINTS + 1)],
        "queries/ann.png": [face_at(POINTS), face_at(POINTS * 0.25 + 5, 0.73)],
        "queries/two.png": [face_at(POINTS), face_at(POINTS * 0.5 + 50, 0.99)],
    }.items():
        paths[name] = str(folder / name)
        write_image(paths[name], random_image(rng, 120, 120))
        detector.add(load_rgb(paths[name]), faces)
    monkeypatch.setattr(Predictor, "detector", property(lambda self: detector))
    return paths
