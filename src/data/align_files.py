"""Offline alignment of image files (the work of tools/align_dataset.py), one image per call so that a process
pool can spread it over all cores. Outputs are written atomically (temporary file + rename), so an interrupted
run leaves no half-written image and a re-run can skip what exists.
"""

import os
from collections import namedtuple

import cv2

from src.data.alignment import AlignmentError, align_face
from src.data.image_io import ImageDecodeError, load_rgb

AlignTask = namedtuple("AlignTask", ["source", "target", "landmarks", "image_size"])
JPEG_QUALITY = 95


class SourceOverwriteError(ValueError):
    """The output would be written into (or over) the source images."""


def check_output_location(src_root, out_root):
    """Refuse an output folder that is the source folder, inside it, or contains it."""
    src, out = os.path.realpath(src_root), os.path.realpath(out_root)
    if src == out or out.startswith(src + os.sep) or src.startswith(out + os.sep):
        raise SourceOverwriteError(
            f"output {out_root} overlaps the source folder {src_root}; choose a place "
            f"outside it (the source is never written)"
        )


def write_atomic(path, data):
    """Write ``data`` (bytes) to a temporary file beside ``path`` and rename it into place."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.part{os.getpid()}"
    with open(temporary, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


def write_image_atomic(path, image_rgb):
    """Encode by the file extension (JPEG at quality 95) and move into place."""
    extension = os.path.splitext(path)[1] or ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if extension.lower() in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(extension, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageDecodeError(f"cannot encode {path}")
    write_atomic(path, data.tobytes())


def align_file(task):
    """Align one image; returns (status, error) with status 'aligned', 'exists' or 'failed'."""
    if os.path.exists(task.target):
        return "exists", None
    try:
        image = align_face(load_rgb(task.source), task.landmarks, task.image_size)
        write_image_atomic(task.target, image)
    except (ImageDecodeError, AlignmentError, OSError) as err:
        return "failed", str(err)
    return "aligned", None
