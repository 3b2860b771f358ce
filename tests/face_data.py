"""Helpers shared by the data tests: real LFW under ../shared (skip only when absent) and generated images."""
import os

import cv2
import numpy as np
import pytest

from src.data.alignment import template_for
from src.data.identity_tree import read_people
from src.data.landmarks import read_landmarks
from src.data.recordio import FaceRecWriter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LFW = os.path.join(ROOT, "..", "shared", "data", "lfw")
LFW_IMAGES = os.path.join(LFW, "images_150")
LFW_LANDMARKS = os.path.join(LFW, "lfw_landmark_150.txt")
LFW_DEVTRAIN = os.path.join(LFW, "peopleDevTrain.txt")


def require_lfw():
    if not os.path.isdir(LFW_IMAGES):
        pytest.skip(f"real LFW ../shared/data/lfw ({os.path.abspath(LFW)}) is absent")


def lfw_landmarks():
    require_lfw()
    return read_landmarks(LFW_LANDMARKS)


def devtrain_people(min_images=4, count=None):
    """{name: [relpath, ...]}: View 1 DevTrain people with >= min_images images that have landmarks."""
    table = lfw_landmarks()
    people = {}
    for name in read_people(LFW_DEVTRAIN):
        folder = os.path.join(LFW_IMAGES, name)
        relpaths = sorted(f"{name}/{f}" for f in os.listdir(folder)) if os.path.isdir(folder) else []
        relpaths = [p for p in relpaths if p in table]
        if len(relpaths) >= min_images:
            people[name] = relpaths
            if count is not None and len(people) == count:
                break
    return people


def link_tree(people, root):
    """Symlink the LFW images of ``people`` into ``root/<name>/`` (nothing is copied)."""
    for name, relpaths in people.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for relpath in relpaths:
            os.symlink(os.path.join(os.path.abspath(LFW_IMAGES), relpath), os.path.join(root, relpath))


def write_image(path, rgb):
    """Write an RGB uint8 image with OpenCV (by extension)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_corrupt_jpeg(path):
    """A file that starts like a JPEG but cannot be decoded (a truncated download)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40)


def random_image(rng, height=40, width=40):
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def face_landmarks(image_size=(112, 96), scale=1.0, shift=(0.0, 0.0)):
    """Template points scaled and shifted: landmarks of a synthetic face."""
    return (template_for(image_size) * scale + np.array(shift, np.float32)).astype(np.float32)



def read_class_map(path):
    """The names of a ``label<TAB>name`` file (``write_class_names``), after checking the labels run 0, 1, 2, ..."""
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    assert [row[0] for row in rows] == [str(label) for label in range(len(rows))], rows
    return [row[1] for row in rows]


def write_face_rec(rec_path, images, image_size):
    """An InsightFace dataset of [(encoded image bytes, label)] (labels 0..C-1) through the project's
    ``FaceRecWriter``, grouped by label; returns the number of classes."""
    ordered = sorted(images, key=lambda item: item[1])
    num_classes = ordered[-1][1] + 1
    writer = FaceRecWriter(rec_path, num_classes, image_size)
    for data, label in ordered:
        writer.add(data, label)
    writer.close()
    return num_classes
