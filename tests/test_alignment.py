"""Five-point alignment: known similarity transforms are recovered, the warp puts landmarks on the template,
the training jitter window is the plain alignment shifted, and real LFW faces land on the template."""

import cv2
import numpy as np
import pytest

from src.data.alignment import SPHEREFACE_TEMPLATE, AlignmentError, align_face, similarity_matrix, template_for
from src.data.image_io import load_rgb
from src.data.similarity import similarity_transform
from tests.face_data import LFW_IMAGES, lfw_landmarks

ANGLE, SCALE, SHIFT = np.deg2rad(20.0), 1.7, np.array([120.0, 25.0])


def known_landmarks(image_size):
    """Landmarks that a known similarity (rotation 20 deg, scale 1.7, shift) takes from the template."""
    rotation = SCALE * np.array([[np.cos(ANGLE), -np.sin(ANGLE)], [np.sin(ANGLE), np.cos(ANGLE)]])
    return template_for(image_size).astype(np.float64) @ rotation.T + SHIFT, rotation


def residuals(matrix, landmarks, image_size):
    moved = np.asarray(landmarks, np.float64) @ matrix[:, :2].T + matrix[:, 2]
    return np.linalg.norm(moved - template_for(image_size), axis=1)


def test_templates():
    np.testing.assert_array_equal(template_for((112, 96)), SPHEREFACE_TEMPLATE)
    arcface = template_for((112, 112))
    np.testing.assert_allclose(arcface[:, 0], SPHEREFACE_TEMPLATE[:, 0] + 8.0)
    np.testing.assert_allclose(arcface[:, 1], SPHEREFACE_TEMPLATE[:, 1])
    np.testing.assert_allclose(arcface[0], [38.2946, 51.6963], atol=1e-4)  # insightface's arcface_dst


@pytest.mark.parametrize("image_size", [(112, 96), (112, 112)])
def test_known_similarity_is_recovered(image_size):
    landmarks, rotation = known_landmarks(image_size)
    matrix = similarity_matrix(landmarks, image_size)
    inverse = np.linalg.inv(rotation)
    np.testing.assert_allclose(matrix[:, :2], inverse, atol=1e-6)
    np.testing.assert_allclose(matrix[:, 2], -inverse @ SHIFT, atol=1e-4)
    assert residuals(matrix, landmarks, image_size).max() < 1e-4


def test_warp_puts_landmark_dots_on_the_template():
    landmarks, _ = known_landmarks((112, 96))
    image = np.zeros((300, 300, 3), np.uint8)
    for x, y in landmarks:
        cv2.circle(image, (int(round(x)), int(round(y))), 4, (255, 255, 255), -1)
    aligned = align_face(image, landmarks, (112, 96))
    assert aligned.shape == (112, 96, 3)
    for x, y in template_for((112, 96)):
        window = aligned[int(y) - 6 : int(y) + 7, int(x) - 6 : int(x) + 7, 0].astype(np.float64)
        rows, cols = np.mgrid[int(y) - 6 : int(y) + 7, int(x) - 6 : int(x) + 7]
        centre = np.array([(cols * window).sum(), (rows * window).sum()]) / window.sum()
        assert np.linalg.norm(centre - [x, y]) < 0.6


def test_jitter_window_at_pad_is_the_plain_alignment():
    landmarks, _ = known_landmarks((112, 96))
    plain_matrix, padded_matrix = similarity_matrix(landmarks, (112, 96)), similarity_matrix(landmarks, (112, 96), 2)
    np.testing.assert_allclose(padded_matrix, plain_matrix + [[0, 0, 2], [0, 0, 2]], atol=1e-9)
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)  # no black border in view
    image = cv2.GaussianBlur(noise, (0, 0), 3)  # smooth, so that 1/32-px rounding of the warp cannot show
    plain = align_face(image, landmarks, (112, 96))
    padded = align_face(image, landmarks, (112, 96), pad=2)
    assert padded.shape == (116, 100, 3)
    assert np.abs(padded[2:114, 2:98].astype(int) - plain.astype(int)).max() <= 1
    # Another window is the same face moved: window (0, 4) shows plain's columns shifted right by 2 px.
    assert np.abs(padded[2:114, 4:98].astype(int) - plain[:, 2:].astype(int)).max() <= 1


def test_degenerate_landmarks():
    with pytest.raises(AlignmentError, match="cannot estimate an alignment"):
        similarity_matrix(np.full((5, 2), 10.0), (112, 96))


def lfw_sample(count=200):
    table = lfw_landmarks()
    relpaths = sorted(table)
    step = len(relpaths) // count
    return [(relpath, table[relpath]) for relpath in relpaths[::step][:count]]


def test_real_lfw_landmarks_land_on_the_template():
    errors = [
        residuals(similarity_matrix(points, (112, 96)), points, (112, 96)).mean() for _, points in lfw_sample(200)
    ]
    mean = float(np.mean(errors))
    assert 1.0 < mean < 4.0, mean  # the reference alignment gets about 2.9 px


def test_real_lfw_crops_are_112_by_96_rgb():
    samples = lfw_sample(200)
    crops = []
    for relpath, points in samples[:40]:
        path = f"{LFW_IMAGES}/{relpath}"
        rgb = load_rgb(path)
        np.testing.assert_array_equal(rgb, cv2.imread(path)[:, :, ::-1])
        crops.append(align_face(rgb, points, (112, 96)))
    crops = np.stack(crops)
    assert crops.shape == (40, 112, 96, 3) and crops.dtype == np.uint8
    # Faces are redder than they are blue: channel 0 is red.
    centre = crops[:, 40:100, 20:76].reshape(-1, 3).mean(axis=0)
    assert centre[0] > centre[2] + 10, centre


def test_similarity_is_scikit_image_s_estimate():
    """src/data/similarity.py computes what skimage.transform.SimilarityTransform estimated before it (the
    reference, scikit-image of requirements.txt), on real landmarks, a mirrored set and a collinear set."""
    transform = pytest.importorskip("skimage.transform")
    rng = np.random.default_rng(1)
    template = template_for((112, 96)).astype(np.float64)
    sets = [points for _, points in lfw_sample(200)]
    sets += [template * [-1.0, 1.0] + 50, np.c_[np.arange(5.0), 2 * np.arange(5.0)], rng.normal(60, 20, (5, 2))]
    for points in sets:
        expected = transform.SimilarityTransform.from_estimate(np.asarray(points, np.float64), template).params
        np.testing.assert_allclose(similarity_transform(points, template), expected, rtol=0, atol=1e-9)
    assert similarity_transform(np.full((5, 2), 10.0), template) is None
