"""Five-point landmark files: ``relpath x1 y1 ... x5 y5`` per line (tabs or spaces), the SphereFace
``lfw_landmark.txt`` layout (left eye, right eye, nose, left and right mouth corner)."""

import os

import numpy as np

from src.data.text_lines import line_failed, text_lines


class LandmarkFormatError(ValueError):
    """A malformed landmark line or a missing entry; the message names the file and line or image."""


def read_landmarks(path):
    """{relpath: 5x2 float32 array}."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"landmark file not found: {path}")
    table = {}
    for number, text in text_lines(path, LandmarkFormatError):
        fields = text.split()
        if len(fields) != 11:
            line_failed(
                path, number, f"expected a path and 10 coordinates, got {len(fields)} fields", LandmarkFormatError
            )
        try:
            table[fields[0]] = np.array(fields[1:], np.float32).reshape(5, 2)
        except ValueError:
            line_failed(path, number, "coordinates must be numbers", LandmarkFormatError)
    return table


def landmarks_for(table, relpath, source):
    """The landmarks of ``relpath`` or an error naming the landmark file ``source`` and the image."""
    if relpath not in table:
        raise LandmarkFormatError(f"{source}: no landmarks for image {relpath}")
    return table[relpath]


# A landmark may lie this fraction of the image's width (x) or height (y) outside the image: detectors place
# points of faces cut by the border just outside it, but a point further out is a wrong coordinate.
OUTSIDE_MARGIN = 0.1


def landmark_problem(landmarks, shape=None):
    """Why five landmarks (left eye, right eye, nose, left and right mouth corner as x y) cannot be those of a
    face in an image of ``shape`` (height, width[, channels]; None: the size is not checked), or None."""
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    if not np.all(np.isfinite(points)):
        return f"landmarks are not all finite numbers: {points.ravel().tolist()}"
    eyes, mouth = points[:2, 1].mean(), points[3:, 1].mean()
    if eyes >= mouth:
        return (
            f"the eyes (mean y {eyes:.1f}) are not above the mouth (mean y {mouth:.1f}): the points must be "
            f"x y pairs of left eye, right eye, nose, left and right mouth corner"
        )
    if shape is not None:
        height, width = shape[:2]
        low = -OUTSIDE_MARGIN * np.array([width, height])
        high = np.array([width, height]) * (1 + OUTSIDE_MARGIN)
        outside = np.any((points < low) | (points > high), axis=1)
        if outside.any():
            x, y = points[np.argmax(outside)]
            return (
                f"landmark ({x:g}, {y:g}) is outside the {width}x{height} image (by more than "
                f"{OUTSIDE_MARGIN:.0%} of its size)"
            )
    return None
