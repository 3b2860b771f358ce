"""One face image made ready for a dataset file (``.rec`` or ``.bin``): aligned with its landmarks, or checked /
fitted when already aligned, and encoded.

An already aligned image of the requested size keeps its original bytes (nothing is re-encoded, so a round trip
is exact). Another size is refused (``fit: none``, the default: the message names the image) or fitted
(``template`` / ``resize``, src/eval/pair_images.py). Aligned and fitted faces are encoded as JPEG (quality
``quality``, as insightface's datasets) or PNG (lossless).
"""

import os
from dataclasses import dataclass

import cv2
import numpy as np

from src.data.alignment import AlignmentError, align_face, fit_aligned
from src.data.image_io import ImageDecodeError, decode_rgb

FITS = ("none", "template", "resize")
ENCODINGS = ("jpg", "png")


def add_face_options(parser, size_help):
    """The options of both dataset writers (tools/make_rec.py, tools/make_bin.py) for how each face is stored."""
    parser.add_argument("--image_size", type=int, nargs=2, default=(112, 112), metavar=("H", "W"), help=size_help)
    parser.add_argument(
        "--fit",
        choices=FITS,
        default="none",
        help="already aligned images of another size: refuse (none), template or resize",
    )
    parser.add_argument("--encoding", choices=ENCODINGS, default="jpg", help="encoding of aligned / fitted faces")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")


class FaceSizeError(ValueError):
    """An already aligned image is not of the requested size (and ``fit`` is none); the message names it."""


@dataclass(frozen=True)
class FaceTask:
    """What to do with one image file (picklable: it crosses to worker processes)."""

    path: str
    image_size: tuple
    landmarks: tuple = None
    fit: str = "none"
    encoding: str = "jpg"
    quality: int = 95


def encode_rgb(image, encoding="jpg", quality=95):
    """HxWx3 uint8 RGB -> encoded bytes (JPEG of ``quality`` or PNG)."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if encoding == "jpg" else []
    ok, data = cv2.imencode("." + encoding, bgr, params)
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as {encoding}")
    return data.tobytes()


def prepare_face(task):
    """The encoded face of ``task``; raises ``ImageDecodeError``, ``AlignmentError`` or ``FaceSizeError``
    naming the image."""
    try:
        with open(task.path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ImageDecodeError(f"cannot read image: {task.path}: {err.strerror}") from err
    image = decode_rgb(data, task.path)
    if task.landmarks is not None:
        try:
            face = align_face(image, np.asarray(task.landmarks, np.float64).reshape(5, 2), task.image_size)
        except AlignmentError as err:
            raise AlignmentError(f"{task.path}: {err}") from err
        return encode_rgb(face, task.encoding, task.quality)
    if image.shape[:2] == tuple(task.image_size):
        return data
    if task.fit == "none":
        raise FaceSizeError(
            f"{task.path}: a {image.shape[0]}x{image.shape[1]} image, but the faces must be "
            f"{task.image_size[0]}x{task.image_size[1]}: give its landmarks to align it, or "
            f"--fit template|resize"
        )
    return encode_rgb(fit_aligned(image, task.image_size, task.fit), task.encoding, task.quality)


def try_prepare_face(task):
    """(encoded bytes, None) or (None, the error message): for worker pools, where one bad image must not stop
    the others."""
    try:
        return prepare_face(task), None
    except (ImageDecodeError, AlignmentError, FaceSizeError) as err:
        return None, str(err)
