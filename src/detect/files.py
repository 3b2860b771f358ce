"""Detection on image files, for tools that process whole datasets: each file ends as landmarks or a recorded skip.

Statuses: ``ok`` (one face), ``several`` (several faces; the most central one is kept: the rule that matched
the SphereFace LFW landmarks in 75 of 75 multi-face images, where "largest box" matched 50), ``no_face``,
``too_small`` (shorter side below the smallest face looked for) and ``unreadable`` (missing, empty or corrupt).
"""

import dataclasses
import os

import numpy as np

from src.data.image_io import ImageDecodeError, load_rgb
from src.detect.detector import ImageTooSmallError

SKIPS = ("no_face", "too_small", "unreadable")


@dataclasses.dataclass
class FileResult:
    """The outcome for one file: ``landmarks`` (5, 2) when a face was kept, else ``detail`` says why not."""

    relpath: str
    status: str
    faces: int = 0
    landmarks: np.ndarray = None
    detail: str = ""


def detect_files(detector, root, relpaths):
    """[FileResult] for ``root/relpath`` of each ``relpaths`` (one detector batch for the readable images)."""
    results, images, pending = {}, [], []
    for relpath in relpaths:
        path = os.path.join(root, relpath)
        try:
            image = load_rgb(path)
            detector.check_size(image, path)
        except ImageDecodeError as err:
            results[relpath] = FileResult(relpath, "unreadable", detail=str(err))
            continue
        except ImageTooSmallError as err:
            results[relpath] = FileResult(relpath, "too_small", detail=str(err))
            continue
        images.append(image)
        pending.append(relpath)
    for relpath, faces in zip(pending, detector.detect_batch(images) if images else []):
        if not faces:
            results[relpath] = FileResult(relpath, "no_face", detail=f"no face found in {os.path.join(root, relpath)}")
        else:
            results[relpath] = FileResult(
                relpath, "ok" if len(faces) == 1 else "several", len(faces), faces[0].landmarks
            )
    return [results[relpath] for relpath in relpaths]
