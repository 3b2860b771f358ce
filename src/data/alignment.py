"""Five-point face alignment to the SphereFace 112x96 (or ArcFace 112x112) template.

A non-reflective similarity transform (rotation, uniform scale, translation) is estimated from the five
landmarks (left eye, right eye, nose, left and right mouth corner) to the template (src/data/similarity.py) and
applied with OpenCV's bilinear warp (black border). ``pad`` enlarges the output by ``pad`` pixels on every side
with the template moved by (pad, pad): cropping the image_size window at (pad, pad) gives the plain alignment,
any other window a face shifted by up to ``pad`` pixels (the training jitter of the seed model zoo, pad 2).
"""

import cv2
import numpy as np

from src.data.image_io import resize_to
from src.data.similarity import similarity_transform

SPHEREFACE_TEMPLATE = np.array(
    [[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366], [33.5493, 92.3655], [62.7299, 92.2041]], np.float32
)


class AlignmentError(ValueError):
    """No similarity transform fits the landmarks (e.g. all five points coincide)."""


def template_for(image_size):
    """The 5-point template for ``image_size`` (height, width): 112x96 is SphereFace's, wider crops keep the
    face centred (112x112: x + 8, ArcFace's template); other sizes scale the 112-high template."""
    height, width = image_size
    scale = height / 112.0
    points = SPHEREFACE_TEMPLATE * scale
    points[:, 0] += (width - 96.0 * scale) / 2.0
    return points


def similarity_matrix(landmarks, image_size, pad=0):
    """2x3 matrix of the similarity transform taking ``landmarks`` (5x2) onto the template (moved by ``pad``)."""
    src = np.asarray(landmarks, np.float64).reshape(5, 2)
    matrix = similarity_transform(src, template_for(image_size).astype(np.float64) + pad)
    if matrix is None:
        raise AlignmentError(f"cannot estimate an alignment from landmarks {src.tolist()}")
    return matrix[:2]


def align_face(image, landmarks, image_size, pad=0):
    """Warp ``image`` (HxWx3) so its landmarks land on the template; returns an
    (image_size[0] + 2 pad) x (image_size[1] + 2 pad) x 3 image."""
    height, width = image_size
    matrix = similarity_matrix(landmarks, image_size, pad)
    return cv2.warpAffine(
        image,
        matrix,
        (width + 2 * pad, height + 2 * pad),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


FITS = ("template", "resize")


def fit_aligned(image, image_size, fit="template"):
    """An already aligned HxWx3 image -> ``image_size`` (height, width), by ``fit`` (one of ``FITS``): ``template``
    maps the template of its size onto the template of ``image_size``, ``resize`` rescales it."""
    if image.shape[:2] == tuple(image_size):
        return image
    if fit == "resize":
        return resize_to(image, image_size)
    if fit == "template":
        return align_face(image, template_for(image.shape[:2]), image_size)
    raise ValueError(f"unknown fit '{fit}'; choose one of {FITS}")
