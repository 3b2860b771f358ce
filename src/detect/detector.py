"""MTCNN face detection with 5 landmarks: the three-stage cascade around the networks of ``src/detect/nets.py``.

1. P-Net over an image pyramid (scales 12 / min_face * factor^k while the shorter side stays >= 12 px): every
   12x12 window scoring >= thresholds[0] is a candidate; NMS (IoU 0.5) per scale, then 0.7 over all scales;
   box regression; candidates made square.
2. R-Net on the 24x24 crops (all candidates of all images in one batch): score >= thresholds[1], NMS 0.7,
   regression, square.
3. O-Net on 48x48 crops: score >= thresholds[2], the 5 landmarks, regression, NMS 0.7 over the smaller area.

Crops and the pyramid are area-resampled (``src/detect/resample.py``). The arithmetic follows the reference
implementation the weights were published with (facenet-pytorch, after the MATLAB original), whose points sit
one pixel right of and below the ``lfw_landmark.txt`` convention (measured: +1.04 px on 500 LFW images); the
detector returns boxes and landmarks shifted back by that pixel, so its landmarks align as the SphereFace files do.

Images whose longer side exceeds ``max_side`` (default 2000 px) are detected on an area-downscaled copy and the
results mapped back to the original pixels; faces then need about min_face x (side / max_side) pixels. An image
whose shorter side is below ``min_face`` cannot hold a detectable face and raises ``ImageTooSmallError``.

Retry: in an image where nothing is found, or whose faces reach past its border (a face cut by the image edge), the
cascade runs once more on a copy with a border of ``RETRY_PAD`` of its size on every side (replicated edge pixels)
(an image with no face also with the thresholds lowered to ``RETRY_THRESHOLDS``); what that finds replaces the
first result. A tightly cropped
face (the face filling the image, as many datasets store them) gives P-Net and the regressions no context around
it: it is often missed, and when found its points are poor (median error 0.31 of the eye distance on LFW crops,
0.05 padded; benchmarks/bench_detect.py --variant, docs/performance.md).
"""

import dataclasses
import functools

import cv2
import mindspore as ms
import numpy as np

from src.data.image_io import MEAN, SCALE
from src.detect.boxes import crop_windows, nms, proposals, regress, square
from src.detect.resample import area_resize
from src.detect.weights import load_nets

MAX_SIDE = 2000
PIXEL_SHIFT = 1.0
MAX_BATCH = 256
RETRY_PAD = 0.25
RETRY_THRESHOLDS = (0.5, 0.6, 0.6)


@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face: ``box`` (4,) x1, y1, x2, y2 and ``landmarks`` (5, 2) (left eye, right eye, nose, left and
    right mouth corner, image-left first) in the image's pixels, float32; ``score`` the O-Net probability."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray


class NoFaceError(ValueError):
    """A caller needed a face and the detector found none; the message names the file."""


class ImageTooSmallError(NoFaceError):
    """The image is smaller than the smallest face the detector looks for."""


def _to_input(images):
    """N x H x W x 3 (float) -> normalised NCHW float32 tensor."""
    return ms.Tensor(np.ascontiguousarray(((images - MEAN) * SCALE).transpose(0, 3, 1, 2), dtype=np.float32))


def central_first(faces, height, width):
    """``faces`` sorted by the distance of the box centre to the image centre, then by larger box."""
    centre = np.array([width / 2.0, height / 2.0])

    def key(face):
        x1, y1, x2, y2 = face.box.astype(np.float64)
        return (float(np.hypot(*((x1 + x2) / 2 - centre[0], (y1 + y2) / 2 - centre[1]))), -float((x2 - x1) * (y2 - y1)))

    return sorted(faces, key=key)


def past_border(boxes, image):
    """Whether any of the (N, 4) boxes reaches outside ``image``: a face cut by the image edge."""
    height, width = image.shape[:2]
    return bool(((boxes[:, :2] < 0).any(1) | (boxes[:, 2] > width) | (boxes[:, 3] > height)).any())


class FaceDetector:
    """MTCNN: ``detect(image_rgb)`` -> faces, most central first."""

    def __init__(
        self, weights=None, min_face=20, thresholds=(0.6, 0.7, 0.7), factor=0.709, max_side=MAX_SIDE, retry=True
    ):
        if min_face < 12:
            raise ValueError(f"min_face must be at least 12 px (P-Net's window), got {min_face}")
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {thresholds}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.min_face, self.thresholds, self.factor, self.max_side = min_face, tuple(thresholds), factor, max_side
        self.retry = retry
        self.nets = load_nets(weights)
        # Dynamic shapes: in graph mode each network compiles once, not once per image size or crop count.
        self.nets.pnet.set_inputs(ms.Tensor(shape=[None, 3, None, None], dtype=ms.float32))
        self.nets.rnet.set_inputs(ms.Tensor(shape=[None, 3, 24, 24], dtype=ms.float32))
        self.nets.onet.set_inputs(ms.Tensor(shape=[None, 3, 48, 48], dtype=ms.float32))

    def scales(self, height, width):
        """The pyramid's scales for an image of this size."""
        scale = 12.0 / self.min_face
        side = min(height, width) * scale
        scales = []
        while side >= 12:
            scales.append(scale)
            scale *= self.factor
            side *= self.factor
        return scales

    def check_size(self, image, name="image"):
        """Raise ``ImageTooSmallError`` when ``image`` is smaller than the smallest face looked for."""
        height, width = image.shape[:2]
        if min(height, width) < self.min_face:
            raise ImageTooSmallError(
                f"{name} is {width}x{height} px, smaller than the smallest face looked for ({self.min_face} px)"
            )

    def detect(self, image_rgb):
        """HxWx3 uint8 RGB -> [Face], most central first (ties: larger box first)."""
        return self.detect_batch([image_rgb])[0]

    def detect_batch(self, images):
        """[HxWx3 uint8 RGB] -> [[Face]] per image; P-Net runs once per scale for images of the same size, R-Net
        and O-Net once per stage for the crops of all images."""
        working, ratios = [], []
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")
            self.check_size(image)
            height, width = image.shape[:2]
            shrink = max(height, width) / self.max_side
            if shrink > 1:
                size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
                working.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
                ratios.append((width / size[0], height / size[1]))
            else:
                working.append(image)
                ratios.append((1.0, 1.0))
        results = self._cascade(working, self.thresholds)
        if self.retry:
            self._retry(working, results)
        faces = []
        for image, ratio, (found_boxes, scores, points) in zip(images, ratios, results):
            found = [
                Face(
                    box=self._to_original(box.reshape(2, 2), ratio).reshape(4),
                    score=float(score),
                    landmarks=self._to_original(point, ratio),
                )
                for box, score, point in zip(found_boxes, scores, points)
            ]
            faces.append(central_first(found, *image.shape[:2]))
        return faces

    def _cascade(self, images, thresholds):
        """The three stages: [(boxes (N, 4), scores (N,), landmarks (N, 5, 2))] per image."""
        boxes = self._propose(images, thresholds[0])
        boxes = self._refine(images, boxes, thresholds[1])
        return self._output(images, boxes, thresholds[2])

    def _retry(self, images, results):
        """Replace the results of ``images`` with no face (lower thresholds), or with a face past the border, by
        those of a padded copy when it finds any (see the module)."""
        missed = [i for i, (boxes, _, _) in enumerate(results) if not len(boxes)]
        cut = [i for i, (boxes, _, _) in enumerate(results) if len(boxes) and past_border(boxes, images[i])]
        for again, thresholds in ((missed, RETRY_THRESHOLDS), (cut, self.thresholds)):
            pads = [round(RETRY_PAD * max(images[i].shape[:2])) for i in again]
            padded = [cv2.copyMakeBorder(images[i], p, p, p, p, cv2.BORDER_REPLICATE) for i, p in zip(again, pads)]
            for i, pad, (boxes, scores, points) in zip(again, pads, self._cascade(padded, thresholds)):
                if len(boxes):
                    results[i] = (boxes - pad, scores, points - pad)

    @staticmethod
    def _to_original(points, ratio):
        """(K, 2) points of the detection copy -> the original image's pixels, the one-pixel shift removed."""
        points = points - PIXEL_SHIFT
        if ratio != (1.0, 1.0):
            points = (points + 0.5) * np.asarray(ratio) - 0.5
        return points.astype(np.float32)

    def _propose(self, images, threshold):
        """Stage 1: [candidate boxes (N, 4)] per image."""
        groups = {}
        for index, image in enumerate(images):
            groups.setdefault(image.shape, []).append(index)
        candidates = [None] * len(images)
        for shape, indices in groups.items():
            stack = np.stack([images[i] for i in indices])
            found = [[] for _ in indices]
            for scale in self.scales(*shape[:2]):
                resized = area_resize(stack, int(shape[0] * scale + 1), int(shape[1] * scale + 1))
                regression, probability = (out.asnumpy() for out in self.nets.pnet(_to_input(resized)))
                for k in range(len(indices)):
                    boxes, scores, offsets = proposals(regression[k], probability[k], scale, threshold)
                    keep = nms(boxes, scores, 0.5)
                    found[k].append((boxes[keep], scores[keep], offsets[keep]))
            for k, index in enumerate(indices):
                if not found[k]:  # a long thin image shrunk below P-Net's window: no scale to look at
                    candidates[index] = np.zeros((0, 4), np.float32)
                    continue
                boxes, scores, offsets = (np.concatenate(parts) for parts in zip(*found[k]))
                keep = nms(boxes, scores, 0.7)
                candidates[index] = square(regress(boxes[keep], offsets[keep], inclusive=False))
        return candidates

    def _crops(self, images, boxes, size):
        """Area-resampled ``size`` x ``size`` crops of every valid box; returns (crops, kept boxes per image)."""
        crops, kept = [], []
        for image, image_boxes in zip(images, boxes):
            windows, valid = crop_windows(image_boxes, image.shape[1], image.shape[0])
            kept.append(image_boxes[valid])
            crops.extend(area_resize(image[y0:y1, x0:x1], size, size) for x0, y0, x1, y1 in windows[valid])
        return crops, kept

    @staticmethod
    def _run(net, crops):
        """Run ``net`` on the crops in batches of up to MAX_BATCH; returns its outputs as arrays."""
        outputs = []
        for start in range(0, len(crops), MAX_BATCH):
            outputs.append([out.asnumpy() for out in net(_to_input(np.stack(crops[start : start + MAX_BATCH])))])
        return [np.concatenate(parts) for parts in zip(*outputs)]

    @staticmethod
    def _split(values, kept):
        bounds = np.cumsum([0] + [len(b) for b in kept])
        return [[value[bounds[i] : bounds[i + 1]] for value in values] for i in range(len(kept))]

    def _refine(self, images, boxes, threshold):
        """Stage 2: R-Net; [boxes (N, 4)] per image."""
        crops, kept = self._crops(images, boxes, 24)
        if not crops:
            return kept
        regression, probability = self._run(self.nets.rnet, crops)
        refined = []
        for image_boxes, (offsets, scores) in zip(kept, self._split((regression, probability), kept)):
            passed = scores > threshold
            image_boxes, offsets, scores = image_boxes[passed], offsets[passed], scores[passed]
            keep = nms(image_boxes, scores, 0.7)
            refined.append(square(regress(image_boxes[keep], offsets[keep], inclusive=True)))
        return refined

    def _output(self, images, boxes, threshold):
        """Stage 3: O-Net; [(boxes (N, 4), scores (N,), landmarks (N, 5, 2))] per image."""
        crops, kept = self._crops(images, boxes, 48)
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
        if not crops:
            return [empty for _ in images]
        regression, points, probability = self._run(self.nets.onet, crops)
        results = []
        for image_boxes, (offsets, image_points, scores) in zip(
            kept, self._split((regression, points, probability), kept)
        ):
            passed = scores > threshold
            image_boxes, offsets, image_points, scores = (
                image_boxes[passed],
                offsets[passed],
                image_points[passed],
                scores[passed],
            )
            size = np.stack([image_boxes[:, 2] - image_boxes[:, 0] + 1, image_boxes[:, 3] - image_boxes[:, 1] + 1], 1)
            landmarks = (
                np.stack([image_points[:, :5], image_points[:, 5:]], axis=2) * size[:, None, :]
                + image_boxes[:, None, :2]
                - 1
            )
            final = regress(image_boxes, offsets, inclusive=True)
            keep = nms(final, scores, 0.7, mode="min", inclusive=True)
            results.append((final[keep], scores[keep], landmarks[keep]))
        return results


@functools.cache
def load_detector(weights=None):
    """The default ``FaceDetector`` for ``weights``, built once per process."""
    return FaceDetector(weights)
