"""Box arithmetic of the MTCNN cascade, on NumPy arrays of boxes ``(N, 4)`` as x1, y1, x2, y2.

Coordinates follow the convention of the MTCNN weights' reference code (facenet-pytorch, after the MATLAB
original): crops start at pixel ``int(x1) - 1``; the detector shifts its final output by one pixel
(``src/detect/detector.py``).
"""

import numpy as np

STRIDE, CELL = 2, 12


def proposals(regression, probability, scale, threshold):
    """P-Net output of one image at one scale -> candidate boxes (N, 4), scores (N,), regressions (N, 4).

    ``regression`` (4, h, w), ``probability`` (h, w): each output cell is a 12x12 window at stride 2 of the
    image resized by ``scale``; its box is mapped back to the image.
    """
    rows, cols = np.nonzero(probability >= threshold)
    corner = np.stack([cols, rows], axis=1).astype(np.float32)
    top_left = np.floor((STRIDE * corner + 1) / scale)
    bottom_right = np.floor((STRIDE * corner + CELL) / scale)
    return (np.concatenate([top_left, bottom_right], axis=1), probability[rows, cols], regression[:, rows, cols].T)


def nms(boxes, scores, threshold, mode="union", inclusive=False):
    """Greedy non-maximum suppression; returns the kept indices, best score first.

    A box is dropped when its overlap with a kept, higher-scoring box exceeds ``threshold``; overlap is
    intersection over union (``mode="union"``) or over the smaller area (``"min"``). ``inclusive`` counts both
    end pixels (width x2 - x1 + 1), as the original MATLAB code's final stage does.
    """
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    extra = 1.0 if inclusive else 0.0
    x1, y1, x2, y2 = boxes.T.astype(np.float64)
    area = (x2 - x1 + extra) * (y2 - y1 + extra)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + extra)
        height = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + extra)
        inter = width * height
        denominator = np.minimum(area[best], area[rest]) if mode == "min" else area[best] + area[rest] - inter
        overlap = np.divide(inter, denominator, out=np.zeros_like(inter), where=denominator > 0)
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def regress(boxes, regression, inclusive):
    """Apply the networks' box regression (offsets in units of the box size)."""
    extra = 1.0 if inclusive else 0.0
    size = np.stack([boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra], axis=1)
    return boxes + regression * np.tile(size, 2)


def square(boxes):
    """The square of side max(width, height) centred on each box."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    x1 = boxes[:, 0] + (width - side) * 0.5
    y1 = boxes[:, 1] + (height - side) * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def crop_windows(boxes, width, height):
    """Integer pixel windows (x0, y0, x1, y1), end exclusive, of ``boxes`` clipped to the image, and a mask of
    the boxes whose window is not empty."""
    windows = np.trunc(boxes).astype(np.int64)
    windows[:, 0] = np.maximum(windows[:, 0], 1) - 1
    windows[:, 1] = np.maximum(windows[:, 1], 1) - 1
    windows[:, 2] = np.minimum(windows[:, 2], width)
    windows[:, 3] = np.minimum(windows[:, 3], height)
    valid = (windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])
    return windows, valid
